//! Seeded people, companies, products and orders. They depend on the seed,
//! the region and the slot only, never on the system: slot 17 is the same
//! person in MoySklad and retailCRM (the Russian systems) and in
//! Teamleader, Reviso and eAccounting (the European ones), so two emulated
//! systems reconcile against each other. Each system then writes its copy its
//! own way, with a little seeded drift (case, spaces, phone formats), the
//! mess a reconciliation has to see through.

use super::store::{rng, salt};
use crate::bench::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Region {
    /// MoySklad and retailCRM: Cyrillic names, roubles, Moscow time.
    Ru,
    /// Teamleader, Reviso, eAccounting: six European countries, euros and crowns.
    Eu,
}

impl Region {
    fn tag(self) -> &'static str {
        match self {
            Region::Ru => "ru",
            Region::Eu => "eu",
        }
    }
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

#[derive(Debug)]
pub(super) struct Country {
    pub code: &'static str,
    pub name: &'static str,
    pub dial: &'static str,
    pub currency: &'static str,
    /// City and a postal code in it.
    pub cities: &'static [(&'static str, &'static str)],
    pub streets: &'static [&'static str],
    pub first: &'static [&'static str],
    pub last: &'static [&'static str],
    pub company_suffix: &'static str,
}

const RU: Country = Country {
    code: "RU",
    name: "Россия",
    dial: "+7",
    currency: "RUB",
    cities: &[
        ("Москва", "101000"),
        ("Санкт-Петербург", "190000"),
        ("Новосибирск", "630000"),
        ("Екатеринбург", "620000"),
        ("Казань", "420000"),
        ("Нижний Новгород", "603000"),
        ("Самара", "443000"),
        ("Краснодар", "350000"),
        ("Воронеж", "394000"),
        ("Пермь", "614000"),
        ("Ростов-на-Дону", "344000"),
        ("Уфа", "450000"),
    ],
    streets: &[
        "ул. Ленина",
        "ул. Гагарина",
        "пр-т Мира",
        "ул. Советская",
        "ул. Садовая",
        "ул. Пушкина",
        "ул. Лесная",
        "ул. Молодёжная",
        "ул. Победы",
        "Набережная ул.",
    ],
    first: &[],
    last: &[],
    company_suffix: "ООО",
};

const EU: [Country; 6] = [
    Country {
        code: "BE",
        name: "België",
        dial: "+32",
        currency: "EUR",
        cities: &[
            ("Brussel", "1000"),
            ("Antwerpen", "2000"),
            ("Gent", "9000"),
            ("Leuven", "3000"),
            ("Brugge", "8000"),
        ],
        streets: &["Kerkstraat", "Stationsstraat", "Dorpstraat", "Molenstraat"],
        first: &[
            "Lotte", "Sander", "Emma", "Lucas", "Noah", "Louise", "Wout", "Fien",
        ],
        last: &[
            "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens",
        ],
        company_suffix: "BV",
    },
    Country {
        code: "NL",
        name: "Nederland",
        dial: "+31",
        currency: "EUR",
        cities: &[
            ("Amsterdam", "1012 AB"),
            ("Utrecht", "3511 CE"),
            ("Rotterdam", "3011 AD"),
            ("Eindhoven", "5611 AZ"),
        ],
        streets: &["Hoofdstraat", "Kerkstraat", "Schoolstraat", "Julianastraat"],
        first: &["Daan", "Sanne", "Bram", "Fleur", "Jeroen", "Anouk"],
        last: &["de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit"],
        company_suffix: "B.V.",
    },
    Country {
        code: "IT",
        name: "Italia",
        dial: "+39",
        currency: "EUR",
        cities: &[
            ("Milano", "20121"),
            ("Roma", "00184"),
            ("Torino", "10121"),
            ("Bologna", "40121"),
            ("Firenze", "50123"),
        ],
        streets: &["Via Roma", "Via Garibaldi", "Corso Italia", "Via Mazzini"],
        first: &["Giulia", "Marco", "Luca", "Sara", "Paolo", "Chiara"],
        last: &["Rossi", "Bianchi", "Russo", "Ferrari", "Esposito", "Romano"],
        company_suffix: "S.r.l.",
    },
    Country {
        code: "ES",
        name: "España",
        dial: "+34",
        currency: "EUR",
        cities: &[
            ("Madrid", "28001"),
            ("Barcelona", "08001"),
            ("Valencia", "46001"),
            ("Sevilla", "41001"),
        ],
        streets: &["Calle Mayor", "Calle Real", "Avenida de la Constitución"],
        first: &["Lucía", "Javier", "Carmen", "Pablo", "Marta", "Diego"],
        last: &["García", "Martínez", "López", "Sánchez", "Pérez", "Gómez"],
        company_suffix: "S.L.",
    },
    Country {
        code: "SE",
        name: "Sverige",
        dial: "+46",
        currency: "SEK",
        cities: &[
            ("Stockholm", "111 22"),
            ("Göteborg", "411 06"),
            ("Malmö", "211 20"),
            ("Uppsala", "753 20"),
        ],
        streets: &["Storgatan", "Drottninggatan", "Kungsgatan", "Skolgatan"],
        first: &["Erik", "Ingrid", "Lars", "Astrid", "Johan", "Maja"],
        last: &[
            "Johansson",
            "Andersson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
        ],
        company_suffix: "AB",
    },
    Country {
        code: "NO",
        name: "Norge",
        dial: "+47",
        currency: "NOK",
        cities: &[("Oslo", "0150"), ("Bergen", "5003"), ("Trondheim", "7011")],
        streets: &["Storgata", "Kirkegata", "Dronningens gate"],
        first: &["Ola", "Kari", "Magnus", "Ingrid", "Henrik", "Nora"],
        last: &["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Berg"],
        company_suffix: "AS",
    },
];

/// Russian first names with their transliteration, male then female.
const RU_MALE: [(&str, &str); 12] = [
    ("Александр", "aleksandr"),
    ("Дмитрий", "dmitry"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
    ("Алексей", "aleksey"),
    ("Максим", "maksim"),
    ("Иван", "ivan"),
    ("Михаил", "mikhail"),
    ("Николай", "nikolay"),
    ("Павел", "pavel"),
    ("Артём", "artem"),
    ("Денис", "denis"),
];
const RU_FEMALE: [(&str, &str); 12] = [
    ("Анна", "anna"),
    ("Мария", "maria"),
    ("Елена", "elena"),
    ("Ольга", "olga"),
    ("Наталья", "natalia"),
    ("Татьяна", "tatiana"),
    ("Екатерина", "ekaterina"),
    ("Ирина", "irina"),
    ("Светлана", "svetlana"),
    ("Юлия", "yulia"),
    ("Дарья", "daria"),
    ("Ксения", "ksenia"),
];
/// Surnames in the male form; the female form adds "а" (and "a" in Latin).
const RU_LAST: [(&str, &str); 20] = [
    ("Иванов", "ivanov"),
    ("Смирнов", "smirnov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Васильев", "vasiliev"),
    ("Петров", "petrov"),
    ("Соколов", "sokolov"),
    ("Михайлов", "mikhailov"),
    ("Новиков", "novikov"),
    ("Фёдоров", "fedorov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Алексеев", "alekseev"),
    ("Лебедев", "lebedev"),
    ("Семёнов", "semenov"),
    ("Егоров", "egorov"),
    ("Павлов", "pavlov"),
    ("Козлов", "kozlov"),
    ("Степанов", "stepanov"),
    ("Николаев", "nikolaev"),
];
/// Patronymics from the father's name: male and female forms.
const RU_PATRONYMIC: [(&str, &str); 10] = [
    ("Александрович", "Александровна"),
    ("Дмитриевич", "Дмитриевна"),
    ("Сергеевич", "Сергеевна"),
    ("Андреевич", "Андреевна"),
    ("Алексеевич", "Алексеевна"),
    ("Максимович", "Максимовна"),
    ("Иванович", "Ивановна"),
    ("Михайлович", "Михайловна"),
    ("Николаевич", "Николаевна"),
    ("Павлович", "Павловна"),
];
const RU_COMPANY: [(&str, &str); 16] = [
    ("Вектор", "vector"),
    ("Альфа", "alfa"),
    ("Гранит", "granit"),
    ("Меридиан", "meridian"),
    ("Техноснаб", "tekhnosnab"),
    ("Стройресурс", "stroyresurs"),
    ("Восход", "voskhod"),
    ("Лидер", "lider"),
    ("Прогресс", "progress"),
    ("Импульс", "impuls"),
    ("Орион", "orion"),
    ("Сфера", "sfera"),
    ("Кристалл", "kristall"),
    ("Горизонт", "gorizont"),
    ("Север", "sever"),
    ("Феникс", "feniks"),
];
const EU_COMPANY: [&str; 12] = [
    "Atlas", "Horizon", "Nova", "Delta", "Vertex", "Polar", "Aurora", "Kite", "Summit", "Harbor",
    "Lumen", "Orbit",
];
const RU_MAIL: [&str; 5] = ["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru"];
const EU_MAIL: [&str; 4] = ["gmail.com", "outlook.com", "proton.me", "hotmail.com"];

/// Lower-case ASCII for an e-mail local part or domain.
fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            Some(match c {
                'á' | 'à' | 'å' | 'ä' => 'a',
                'é' | 'è' | 'ë' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ø' => 'o',
                'ú' | 'ü' => 'u',
                'ñ' => 'n',
                ' ' => return None,
                c if c.is_ascii_alphanumeric() || c == '-' => c,
                _ => return None,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub(super) struct Address {
    pub country: &'static Country,
    pub city: &'static str,
    pub postal: String,
    pub street: &'static str,
    pub house: u32,
    pub flat: Option<u32>,
}

impl Address {
    /// Street and number the way the country writes them.
    pub fn line(&self) -> String {
        match self.country.code {
            "RU" => match self.flat {
                Some(f) => format!("{}, д. {}, кв. {f}", self.street, self.house),
                None => format!("{}, д. {}", self.street, self.house),
            },
            "IT" | "ES" => format!("{}, {}", self.street, self.house),
            _ => format!("{} {}", self.street, self.house),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Person {
    pub first: String,
    pub last: String,
    /// Russian people only.
    pub patronymic: Option<String>,
    pub female: bool,
    pub email: String,
    /// E.164, e.g. +79161234567.
    pub phone: String,
    pub address: Address,
}

impl Person {
    pub fn full_name(&self) -> String {
        match &self.patronymic {
            Some(p) => format!("{} {} {p}", self.last, self.first),
            None => format!("{} {}", self.first, self.last),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Company {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub domain: String,
    /// INN in Russia, a VAT number in Europe.
    pub tax_id: String,
    pub address: Address,
}

fn country(rng: &mut Rng, region: Region) -> &'static Country {
    match region {
        Region::Ru => &RU,
        Region::Eu => &EU[rng.below(EU.len() as u64) as usize],
    }
}

fn address(rng: &mut Rng, country: &'static Country) -> Address {
    let (city, postal) = pick(rng, country.cities);
    let postal = match country.code {
        // Russian codes vary in the last three digits within a city.
        "RU" => format!("{}{:03}", &postal[..3], rng.below(1000)),
        _ => postal.to_string(),
    };
    Address {
        country,
        city,
        postal,
        street: pick(rng, country.streets),
        house: 1 + rng.below(120) as u32,
        flat: (country.code == "RU" && rng.chance(0.7)).then(|| 1 + rng.below(300) as u32),
    }
}

fn mobile(rng: &mut Rng, country: &Country) -> String {
    let national = match country.code {
        "RU" => format!("9{}", digits(rng, 9)),
        "BE" => format!("4{}{}", 7 + rng.below(3), digits(rng, 7)),
        "NL" => format!("6{}", digits(rng, 8)),
        "IT" => format!("3{}", digits(rng, 9)),
        "ES" => format!("6{}", digits(rng, 8)),
        "SE" => format!("7{}", digits(rng, 8)),
        _ => format!("9{}", digits(rng, 7)),
    };
    format!("{}{national}", country.dial)
}

/// The person at `slot` of a region.
pub(super) fn person(seed: u64, region: Region, slot: usize) -> Person {
    let mut rng = rng(seed, salt(&format!("person/{}", region.tag())), slot);
    let country = country(&mut rng, region);
    let female = rng.chance(0.5);
    let (first, last, patronymic, first_latin, last_latin) = match region {
        Region::Ru => {
            let (first, first_l) = pick(&mut rng, if female { &RU_FEMALE } else { &RU_MALE });
            let (last, last_l) = pick(&mut rng, &RU_LAST);
            let (pm, pf) = pick(&mut rng, &RU_PATRONYMIC);
            let (last, last_l) = if female {
                (format!("{last}а"), format!("{last_l}a"))
            } else {
                (last.to_string(), last_l.to_string())
            };
            let patronymic = if female { pf } else { pm };
            (
                first.to_string(),
                last,
                Some(patronymic.to_string()),
                first_l.to_string(),
                last_l,
            )
        }
        Region::Eu => {
            let first = pick(&mut rng, country.first);
            let last = pick(&mut rng, country.last);
            (
                first.to_string(),
                last.to_string(),
                None,
                ascii(first),
                ascii(last),
            )
        }
    };
    // The slot in the address keeps every e-mail unique, as systems require.
    let email = match rng.below(3) {
        0 => format!("{first_latin}.{last_latin}{}", slot + 1),
        1 => format!("{}{last_latin}{}", &first_latin[..1], slot + 1),
        _ => format!("{last_latin}.{first_latin}{}", slot + 1),
    };
    let domain = match region {
        Region::Ru => pick(&mut rng, &RU_MAIL),
        Region::Eu => pick(&mut rng, &EU_MAIL),
    };
    Person {
        first,
        last,
        patronymic,
        female,
        email: format!("{email}@{domain}"),
        phone: mobile(&mut rng, country),
        address: address(&mut rng, country),
    }
}

/// The company at `slot` of a region (a customer's employer, or a
/// counterparty that is a legal entity).
pub(super) fn company(seed: u64, region: Region, slot: usize) -> Company {
    let mut rng = rng(seed, salt(&format!("company/{}", region.tag())), slot);
    let country = country(&mut rng, region);
    let (name, latin) = match region {
        Region::Ru => {
            let (word, latin) = pick(&mut rng, &RU_COMPANY);
            let form = pick(&mut rng, &["ООО", "ООО", "АО"]);
            (format!("{form} «{word}-{}»", slot + 1), latin.to_string())
        }
        Region::Eu => {
            let word = pick(&mut rng, &EU_COMPANY);
            (
                format!("{word} {} {}", slot + 1, country.company_suffix),
                ascii(word),
            )
        }
    };
    let tld = match country.code {
        "RU" => "ru",
        c => &c.to_ascii_lowercase(),
    };
    let domain = format!("{latin}{}.{tld}", slot + 1);
    let tax_id = match country.code {
        "RU" => inn10(&mut rng),
        "BE" => format!("BE0{}", digits(&mut rng, 9)),
        "NL" => format!("NL{}B01", digits(&mut rng, 9)),
        "IT" => format!("IT{}", digits(&mut rng, 11)),
        "ES" => format!("ESB{}", digits(&mut rng, 8)),
        "SE" => format!("SE{}01", digits(&mut rng, 10)),
        _ => format!("NO{}MVA", digits(&mut rng, 9)),
    };
    Company {
        name,
        email: format!("{}@{domain}", pick(&mut rng, &["info", "office", "sales"])),
        phone: mobile(&mut rng, country),
        domain,
        tax_id,
        address: address(&mut rng, country),
    }
}

/// Whether the customer at `slot` buys as a company: the same answer in
/// every system of the region.
pub(super) fn is_company(seed: u64, region: Region, slot: usize) -> bool {
    rng(seed, salt(&format!("legal/{}", region.tag())), slot).chance(0.4)
}

fn check_sum(digits: &[u8], weights: &[u32]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip(weights)
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    (sum % 11 % 10) as u8
}

fn inn_digits(rng: &mut Rng, n: usize) -> Vec<u8> {
    // Region codes of the cities above, so the INN looks local.
    let region = pick(rng, &[77u8, 78, 54, 66, 16, 52, 63, 23, 36, 59, 61, 2]);
    let mut d = vec![region / 10, region % 10];
    d.extend((2..n).map(|_| rng.below(10) as u8));
    d
}

/// A legal entity's INN: ten digits, the last a check digit.
fn inn10(rng: &mut Rng) -> String {
    let mut d = inn_digits(rng, 9);
    d.push(check_sum(&d, &[2, 4, 10, 3, 5, 9, 4, 6, 8]));
    d.iter().map(|d| char::from(b'0' + d)).collect()
}

/// A person's INN: twelve digits, the last two check digits.
pub(super) fn inn12(seed: u64, slot: usize) -> String {
    let mut rng = rng(seed, salt("inn12"), slot);
    let mut d = inn_digits(&mut rng, 10);
    d.push(check_sum(&d, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
    d.push(check_sum(&d, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
    d.iter().map(|d| char::from(b'0' + d)).collect()
}

/// An EAN-13 for a product slot: unique per slot, valid check digit.
fn ean13(prefix: &str, slot: usize) -> String {
    let body = format!(
        "{prefix}{:0width$}",
        slot % 10usize.pow(12 - prefix.len() as u32),
        width = 12 - prefix.len()
    );
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

#[derive(Debug, Clone)]
pub(super) struct Product {
    pub name: String,
    /// Unique per slot: `P-00001`.
    pub code: String,
    pub article: String,
    pub ean13: String,
    /// In the smallest unit of the region's currency (kopecks, cents).
    pub price: i64,
    pub stock: i64,
    pub description: String,
}

/// Category, variants, sizes and a base price in roubles and euros.
type Category = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    i64,
    i64,
);

const RU_PRODUCTS: [Category; 8] = [
    (
        "Кофе в зёрнах",
        &["Арабика", "Робуста", "Эспрессо", "Колумбия", "Эфиопия"],
        &["250 г", "500 г", "1 кг"],
        890,
        12,
    ),
    (
        "Чай",
        &["чёрный", "зелёный", "улун"],
        &["100 г", "250 г"],
        350,
        6,
    ),
    (
        "Кружка керамическая",
        &["белая", "чёрная", "синяя"],
        &["300 мл", "400 мл"],
        490,
        9,
    ),
    ("Блокнот", &["A5", "A6"], &["в клетку", "в линейку"], 290, 5),
    (
        "Ручка шариковая",
        &["синяя", "чёрная"],
        &["0,5 мм", "0,7 мм"],
        60,
        2,
    ),
    (
        "Рюкзак городской",
        &["серый", "чёрный"],
        &["20 л", "30 л"],
        4990,
        69,
    ),
    (
        "Наушники беспроводные",
        &["X1", "X2", "Pro"],
        &["чёрные", "белые"],
        6990,
        99,
    ),
    (
        "Кабель USB-C",
        &["плетёный", "силиконовый"],
        &["1 м", "2 м"],
        590,
        9,
    ),
];
const EU_PRODUCTS: [Category; 8] = [
    (
        "Coffee beans",
        &["Arabica", "Robusta", "Espresso", "Colombia", "Ethiopia"],
        &["250 g", "500 g", "1 kg"],
        890,
        12,
    ),
    (
        "Tea",
        &["black", "green", "oolong"],
        &["100 g", "250 g"],
        350,
        6,
    ),
    (
        "Ceramic mug",
        &["white", "black", "blue"],
        &["300 ml", "400 ml"],
        490,
        9,
    ),
    ("Notebook", &["A5", "A6"], &["squared", "ruled"], 290, 5),
    (
        "Ballpoint pen",
        &["blue", "black"],
        &["0.5 mm", "0.7 mm"],
        60,
        2,
    ),
    (
        "City backpack",
        &["grey", "black"],
        &["20 L", "30 L"],
        4990,
        69,
    ),
    (
        "Wireless headphones",
        &["X1", "X2", "Pro"],
        &["black", "white"],
        6990,
        99,
    ),
    (
        "USB-C cable",
        &["braided", "silicone"],
        &["1 m", "2 m"],
        590,
        9,
    ),
];

/// The product at `slot` of a region.
pub(super) fn product(seed: u64, region: Region, slot: usize) -> Product {
    let mut rng = rng(seed, salt(&format!("product/{}", region.tag())), slot);
    let catalogue = match region {
        Region::Ru => &RU_PRODUCTS,
        Region::Eu => &EU_PRODUCTS,
    };
    let (category, variants, sizes, rub, eur) = pick(&mut rng, catalogue);
    let variant = pick(&mut rng, variants);
    let size = pick(&mut rng, sizes);
    let base = match region {
        Region::Ru => rub * 100,
        Region::Eu => eur * 100,
    };
    // Prices end in 0 or 9 like shelf prices do.
    let price = (base * (80 + rng.below(60) as i64) / 100) / 100 * 100
        - if rng.chance(0.5) { 1 } else { 0 };
    Product {
        name: format!("{category} {variant}, {size}"),
        code: format!("P-{:05}", slot + 1),
        article: format!("ART-{}", 1000 + slot),
        ean13: ean13(if region == Region::Ru { "460" } else { "540" }, slot),
        price: price.max(99),
        stock: rng.below(500) as i64,
        description: format!("{category}: {variant}, {size}."),
    }
}

#[derive(Debug, Clone)]
pub(super) struct Order {
    pub customer: usize,
    /// Product slot and quantity.
    pub lines: Vec<(usize, i64)>,
    /// 0..4, mapped to each vendor's own statuses.
    pub stage: usize,
}

/// The order at `slot` among `n` customers and `n` products.
pub(super) fn order(seed: u64, region: Region, slot: usize, n: usize) -> Order {
    let mut rng = rng(seed, salt(&format!("order/{}", region.tag())), slot);
    let n = n.max(1) as u64;
    let lines = 1 + rng.below(3) as usize;
    Order {
        customer: rng.below(n) as usize,
        lines: (0..lines)
            .map(|_| (rng.below(n) as usize, 1 + rng.below(5) as i64))
            .collect(),
        stage: rng.below(5) as usize,
    }
}

/// Seeded drift a system applies to its copy of a shared value.
pub(super) struct Drift(Rng);

impl Drift {
    pub fn new(seed: u64, system: &str, slot: usize) -> Self {
        Self(rng(seed, salt(&format!("drift/{system}")), slot))
    }

    pub fn email(&mut self, email: &str) -> String {
        match self.0.below(40) {
            0 => email.to_uppercase(),
            1 => format!("{email} "),
            2 => {
                let (a, b) = email.split_once('@').unwrap_or((email, ""));
                format!("{}{}@{b}", a[..1].to_uppercase(), &a[1..])
            }
            _ => email.to_string(),
        }
    }

    /// The phone written one of the ways people type it, or missing.
    pub fn phone(&mut self, e164: &str) -> Option<String> {
        let (cc, rest) = if let Some(rest) = e164.strip_prefix("+7") {
            ("+7", rest)
        } else {
            e164.split_at(3)
        };
        Some(match self.0.below(20) {
            0 => return None,
            1..=3 if cc == "+7" => format!("8{rest}"),
            1..=3 => format!("0{rest}"),
            4..=6 if cc == "+7" && rest.len() == 10 => format!(
                "+7 ({}) {}-{}-{}",
                &rest[..3],
                &rest[3..6],
                &rest[6..8],
                &rest[8..]
            ),
            4..=6 if rest.len() >= 7 => {
                format!("{cc} {} {} {}", &rest[..3], &rest[3..6], &rest[6..])
            }
            _ => e164.to_string(),
        })
    }

    /// Occasionally true: a field this system never got.
    pub fn missing(&mut self) -> bool {
        self.0.below(25) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inns_carry_valid_check_digits() {
        let inn = inn12(1, 5);
        let d: Vec<u8> = inn.bytes().map(|b| b - b'0').collect();
        assert_eq!(d.len(), 12);
        assert_eq!(d[10], check_sum(&d[..10], &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
        assert_eq!(
            d[11],
            check_sum(&d[..11], &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
        );
        assert_eq!(ean13("460", 0), "4600000000008");
    }

    #[test]
    fn the_same_slot_is_the_same_person_for_a_seed() {
        let a = person(3, Region::Ru, 10);
        let b = person(3, Region::Ru, 10);
        assert_eq!(a.email, b.email);
        assert_ne!(a.email, person(4, Region::Ru, 10).email);
        assert!(person(3, Region::Eu, 10).email.is_ascii());
    }
}
