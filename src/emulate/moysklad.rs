//! MoySklad JSON API 1.2: counterparties, customer orders and products under
//! `/entity/{type}`, offset pagination with `meta`, `filter=updated>=...` in
//! Moscow time, batch POSTs, idempotent creates by `syncId`, gzip-only
//! responses, and the 45-per-3-seconds and 5-parallel limits.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::fake::{self, Drift, Region};
use super::store::{Ctx, Spec, Times, Window};
use super::{
    Access, Auth, Limit, Req, Resp, Sys, System, Tx, Vendor, keep_fields, merge_top, moscow,
    msk_millis, parse_time, set_param, with_query,
};

pub(super) struct MoySklad;

const BASE: &[&str] = &["api", "remap", "1.2"];
const LIMIT: usize = 45;
const WINDOW_MS: u64 = 3000;
/// Fields the server owns: a client's values are ignored.
const SERVER_FIELDS: &[&str] = &["id", "meta", "accountId", "created", "updated"];

static SPECS: [Spec; 3] = [
    Spec {
        name: "counterparty",
        pk: "id",
        keys: &["id", "syncId"],
        precision: 1,
        generate: counterparty,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("counterparty", value),
            _ => None,
        },
    },
    Spec {
        name: "customerorder",
        pk: "id",
        keys: &["id", "syncId"],
        precision: 1,
        generate: customerorder,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("customerorder", value),
            _ => None,
        },
    },
    Spec {
        name: "product",
        pk: "id",
        keys: &["id", "syncId"],
        precision: 1,
        generate: product,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("product", value),
            _ => None,
        },
    },
];

fn error(status: u16, code: u32, text: &str, parameter: Option<&str>) -> Resp {
    let mut e = json!({
        "error": text,
        "code": code,
        "moreInfo": format!("https://dev.moysklad.ru/doc/api/remap/1.2/#error_{code}"),
    });
    if let Some(p) = parameter {
        e["parameter"] = json!(p);
    }
    Resp::json(status, json!({ "errors": [e] }))
}

fn ui_name(entity: &str) -> &str {
    match entity {
        "counterparty" => "Company",
        "product" => "good",
        e => e,
    }
}

/// The `meta` block every MoySklad object and reference carries.
fn meta(ctx: &Ctx, entity: &str, id: &str) -> Value {
    let base = ctx.base();
    json!({
        "href": format!("{base}/entity/{entity}/{id}"),
        "metadataHref": format!("{base}/entity/{entity}/metadata"),
        "type": entity,
        "mediaType": "application/json",
        "uuidHref": format!("https://online.moysklad.ru/app/#{}/edit?id={id}", ui_name(entity)),
    })
}

fn account_id(ctx: &Ctx) -> String {
    ctx.uuid("account", 0)
}

fn employee_meta(ctx: &Ctx) -> Value {
    let base = ctx.base();
    json!({
        "href": format!("{base}/entity/employee/{}", ctx.uuid("employee", 0)),
        "metadataHref": format!("{base}/entity/employee/metadata"),
        "type": "employee",
        "mediaType": "application/json",
    })
}

/// MoySklad's default external codes: 22 random letters and digits.
fn external_code(ctx: &Ctx, entity: &str, slot: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = ctx.rng(&format!("{entity}/externalCode"), slot);
    (0..22)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// Drop top-level nulls: MoySklad leaves empty fields out.
fn compact(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    v
}

fn address(a: &fake::Address) -> (String, Value) {
    let full = format!("{}, {}, {}", a.postal, a.city, a.line());
    let mut v = json!({
        "postalCode": a.postal,
        "city": a.city,
        "street": a.street,
        "house": a.house.to_string(),
    });
    if let Some(f) = a.flat {
        v["apartment"] = json!(f.to_string());
    }
    (full, v)
}

fn counterparty(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("counterparty", slot);
    let mut drift = Drift::new(ctx.seed, "moysklad", slot);
    let mut rng = ctx.rng("counterparty/extra", slot);
    let legal = fake::is_company(ctx.seed, Region::Ru, slot);
    let person = fake::person(ctx.seed, Region::Ru, slot);
    let mut v = json!({
        "meta": meta(ctx, "counterparty", &id),
        "id": id,
        "accountId": account_id(ctx),
        "owner": { "meta": employee_meta(ctx) },
        "shared": true,
        "updated": msk_millis(times.updated),
        "created": msk_millis(times.created),
        "externalCode": external_code(ctx, "counterparty", slot),
        "archived": false,
    });
    let (addr_text, addr) = if legal {
        let c = fake::company(ctx.seed, Region::Ru, slot);
        v["name"] = json!(c.name);
        v["companyType"] = json!("legal");
        v["legalTitle"] = json!(c.name);
        v["email"] = json!(drift.email(&c.email));
        v["phone"] = json!(drift.phone(&c.phone));
        v["inn"] = json!(c.tax_id);
        address(&c.address)
    } else {
        v["name"] = json!(person.full_name());
        v["companyType"] = json!(if rng.chance(0.2) {
            "entrepreneur"
        } else {
            "individual"
        });
        v["legalFirstName"] = json!(person.first);
        v["legalLastName"] = json!(person.last);
        v["legalMiddleName"] = json!(person.patronymic);
        v["email"] = json!(drift.email(&person.email));
        v["phone"] = json!(drift.phone(&person.phone));
        if rng.chance(0.5) {
            v["inn"] = json!(fake::inn12(ctx.seed, slot));
        }
        address(&person.address)
    };
    v["actualAddress"] = json!(addr_text);
    v["actualAddressFull"] = addr;
    let tags: &[&str] = match rng.below(4) {
        0 => &["опт"],
        1 => &["розница"],
        2 => &["розница", "vip"],
        _ => &[],
    };
    v["tags"] = json!(tags);
    v["attributes"] = json!([{
        "meta": {
            "href": format!("{}/entity/counterparty/metadata/attributes/{}", ctx.base(), ctx.uuid("attribute", 0)),
            "type": "attributemetadata",
            "mediaType": "application/json",
        },
        "id": ctx.uuid("attribute", 0),
        "name": "Источник",
        "type": "string",
        "value": SOURCES[rng.below(4) as usize],
    }]);
    v["salesAmount"] = json!(0.0);
    compact(v)
}

/// Where a counterparty came from, a typical custom attribute.
const SOURCES: [&str; 4] = ["Сайт", "Звонок", "Рекомендация", "Выставка"];

fn state_meta(ctx: &Ctx, stage: usize) -> Value {
    let base = ctx.base();
    json!({
        "meta": {
            "href": format!("{base}/entity/customerorder/metadata/states/{}", ctx.uuid("state", stage)),
            "metadataHref": format!("{base}/entity/customerorder/metadata"),
            "type": "state",
            "mediaType": "application/json",
        }
    })
}

fn customerorder(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("customerorder", slot);
    let o = fake::order(ctx.seed, Region::Ru, slot, ctx.n);
    let positions: Vec<Value> = o
        .lines
        .iter()
        .enumerate()
        .map(|(i, &(p, qty))| {
            let price = fake::product(ctx.seed, Region::Ru, p).price;
            json!({
                "id": ctx.uuid("customerorderposition", slot * 8 + i),
                "quantity": qty as f64,
                "price": price as f64,
                "discount": 0.0,
                "vat": 20,
                "assortment": { "meta": meta(ctx, "product", &ctx.uuid("product", p)) },
            })
        })
        .collect();
    let sum = sum_of(&positions);
    json!({
        "meta": meta(ctx, "customerorder", &id),
        "id": id,
        "accountId": account_id(ctx),
        "owner": { "meta": employee_meta(ctx) },
        "shared": true,
        "updated": msk_millis(times.updated),
        "name": format!("{:05}", slot + 1),
        "externalCode": external_code(ctx, "customerorder", slot),
        "moment": msk_millis(times.created),
        "applicable": true,
        "vatEnabled": true,
        "vatIncluded": true,
        "sum": sum,
        "agent": { "meta": meta(ctx, "counterparty", &ctx.uuid("counterparty", o.customer)) },
        "organization": { "meta": meta(ctx, "organization", &ctx.uuid("organization", 0)) },
        "state": state_meta(ctx, o.stage),
        "created": msk_millis(times.created),
        "payedSum": if o.stage >= 2 { sum } else { 0.0 },
        "shippedSum": if o.stage >= 3 { sum } else { 0.0 },
        "invoicedSum": if o.stage >= 1 { sum } else { 0.0 },
        "reservedSum": 0.0,
        "positions": positions,
        "attributes": [],
    })
}

/// An order's sum in kopecks: quantity times price less discount.
fn sum_of(positions: &[Value]) -> f64 {
    positions
        .iter()
        .map(|p| {
            let f = |k: &str| p.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            f("quantity") * f("price") * (1.0 - f("discount") / 100.0)
        })
        .sum::<f64>()
        .round()
}

fn product(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("product", slot);
    let p = fake::product(ctx.seed, Region::Ru, slot);
    let base = ctx.base();
    let currency = json!({ "meta": {
        "href": format!("{base}/entity/currency/{}", ctx.uuid("currency", 0)),
        "metadataHref": format!("{base}/entity/currency/metadata"),
        "type": "currency",
        "mediaType": "application/json",
    }});
    json!({
        "meta": meta(ctx, "product", &id),
        "id": id,
        "accountId": account_id(ctx),
        "owner": { "meta": employee_meta(ctx) },
        "shared": true,
        "updated": msk_millis(times.updated),
        "name": p.name,
        "description": p.description,
        "code": p.code,
        "externalCode": external_code(ctx, "product", slot),
        "archived": false,
        "pathName": "",
        "useParentVat": true,
        "article": p.article,
        "salePrices": [{
            "value": p.price as f64,
            "currency": currency,
            "priceType": {
                "meta": {
                    "href": format!("{base}/context/companysettings/pricetype/{}", ctx.uuid("pricetype", 0)),
                    "type": "pricetype",
                    "mediaType": "application/json",
                },
                "id": ctx.uuid("pricetype", 0),
                "name": "Цена продажи",
                "externalCode": "cbcf493b-55bc-11d9-848a-00112f43529a",
            },
        }],
        "buyPrice": { "value": (p.price * 6 / 10) as f64, "currency": currency },
        "barcodes": [{ "ean13": p.ean13 }],
        "paymentItemType": "GOOD",
        "discountProhibited": false,
        "weight": 0.0,
        "volume": 0.0,
        "variantsCount": 0,
        "isSerialTrackable": false,
        "trackingType": "NOT_TRACKED",
    })
}

/// A list filter: a time window on `updated`/`created`, plus other
/// conditions tested record by record.
struct Filter {
    window: Window,
    conditions: Vec<(String, String, String)>,
}

const OPERATORS: [&str; 9] = [">=", "<=", "!=", "=~", "~=", "=", ">", "<", "~"];

fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut filter = Filter {
        window: Window::default(),
        conditions: Vec::new(),
    };
    for part in text.split(';').filter(|p| !p.trim().is_empty()) {
        let pos = part
            .find(['<', '>', '=', '!', '~'])
            .ok_or_else(|| format!("в фильтре '{part}' нет оператора"))?;
        let (field, rest) = part.split_at(pos);
        let op = OPERATORS
            .iter()
            .find(|op| rest.starts_with(*op))
            .ok_or_else(|| format!("неизвестный оператор в '{part}'"))?;
        let value = &rest[op.len()..];
        let field = field.trim();
        if field == "updated" || field == "created" {
            let t = parse_time(value, moscow())
                .ok_or_else(|| format!("неверный формат даты '{value}'"))?;
            if field == "created" {
                filter.window.field = super::store::TimeField::Created;
            }
            let w = &mut filter.window;
            match *op {
                ">=" => w.from = Some((t, true)),
                ">" => w.from = Some((t, false)),
                "<=" => w.to = Some((t, true)),
                "<" => w.to = Some((t, false)),
                "=" => {
                    w.from = Some((t, true));
                    w.to = Some((t, true));
                }
                _ => return Err(format!("оператор '{op}' не применим к полю '{field}'")),
            }
        } else {
            filter
                .conditions
                .push((field.to_string(), op.to_string(), value.to_string()));
        }
    }
    Ok(filter)
}

/// Whether a record passes one non-time filter condition. References
/// (`agent=...`) compare by their `meta.href`.
fn passes(record: &Value, (field, op, value): &(String, String, String)) -> bool {
    let actual = match record.get(field) {
        Some(Value::Object(o)) => o
            .get("meta")
            .and_then(|m| m.get("href"))
            .and_then(Value::as_str)
            .map(str::to_string),
        Some(v) => super::store::key_text(v).or_else(|| Some(v.to_string())),
        None => None,
    };
    let actual = actual.unwrap_or_default();
    match op.as_str() {
        "=" => actual == *value,
        "!=" => actual != *value,
        "~" => actual.to_lowercase().contains(&value.to_lowercase()),
        "=~" => actual.to_lowercase().starts_with(&value.to_lowercase()),
        "~=" => actual.to_lowercase().ends_with(&value.to_lowercase()),
        _ => false,
    }
}

fn list(tx: &Tx, req: &Req, t: usize, entity: &str) -> Resp {
    let limit = match req.query("limit").map(str::parse::<usize>) {
        None => 1000,
        Some(Ok(l)) if (1..=1000).contains(&l) => l,
        _ => {
            return error(
                400,
                1002,
                "Параметр 'limit' должен быть целым числом от 1 до 1000",
                Some("limit"),
            );
        }
    };
    let Ok(offset) = req.query("offset").map_or(Ok(0), str::parse::<usize>) else {
        return error(
            400,
            1002,
            "Параметр 'offset' должен быть неотрицательным целым числом",
            Some("offset"),
        );
    };
    let filter = match req.query("filter").map(parse_filter) {
        None => Filter {
            window: Window::default(),
            conditions: Vec::new(),
        },
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            return error(
                400,
                1002,
                &format!("Ошибка фильтрации: {e}"),
                Some("filter"),
            );
        }
    };
    let desc = req
        .query("order")
        .is_some_and(|o| o.replace(' ', "").starts_with("updated,desc"));
    let table = &tx.sys.tables[t];
    let conditions = filter.conditions;
    let fetch = |offset: usize, limit: usize| {
        if conditions.is_empty() {
            table.page(&filter.window, offset, limit)
        } else {
            table.page_where(&filter.window, offset, limit, &|r| {
                conditions.iter().all(|c| passes(r, c))
            })
        }
    };
    let page = if desc {
        // Newest first: the same records as an ascending page counted from the end.
        let total = fetch(0, 0).total;
        let end = total.saturating_sub(offset);
        let start = end.saturating_sub(limit);
        fetch(start, end - start)
    } else {
        fetch(offset, limit)
    };
    let ctx = tx.ctx();
    let list_url = format!("{}/entity/{entity}", ctx.base());
    let mut meta = json!({
        "href": format!("{}{}", ctx.root, req.target),
        "type": entity,
        "mediaType": "application/json",
        "size": page.total,
        "limit": limit,
        "offset": offset,
    });
    if offset + limit < page.total {
        meta["nextHref"] = json!(with_query(
            &list_url,
            &set_param(&req.query, "offset", (offset + limit).to_string())
        ));
    }
    if offset > 0 {
        meta["previousHref"] = json!(with_query(
            &list_url,
            &set_param(
                &req.query,
                "offset",
                offset.saturating_sub(limit).to_string()
            )
        ));
    }
    let context = json!({ "employee": { "meta": employee_meta(&ctx) } });
    Resp::page_text(move || {
        // The document's keys in MoySklad's order, rows spliced in as text.
        let head = json!({ "context": context, "meta": meta }).to_string();
        let mut out = head.into_bytes();
        out.pop();
        out.extend_from_slice(b",\"rows\":");
        out.extend_from_slice(&page.json_rows(desc));
        out.push(b'}');
        out
    })
}

fn not_found(id: &str) -> Resp {
    error(404, 1021, &format!("Объект с UUID '{id}' не найден"), None)
}

/// Why a record cannot be saved, as MoySklad's 412 says it.
fn invalid(entity: &str, record: &Value) -> Option<Resp> {
    let has = |k: &str| {
        record
            .get(k)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    let missing = match entity {
        "customerorder" if record.get("agent").is_none_or(|a| a.get("meta").is_none()) => {
            Some("agent")
        }
        "counterparty" | "product" if !has("name") => Some("name"),
        _ => None,
    }?;
    Some(error(
        412,
        3000,
        &format!("Ошибка сохранения объекта: поле '{missing}' не может быть пустым"),
        Some(missing),
    ))
}

/// The id a batch item names in `meta.href` (or `id`), if it is an update.
fn update_target(item: &Value) -> Option<String> {
    let href = item.get("meta")?.get("href").and_then(Value::as_str);
    match href {
        Some(h) => h.rsplit('/').next().map(str::to_string),
        None => item.get("id").and_then(Value::as_str).map(str::to_string),
    }
}

fn create_one(tx: &mut Tx, t: usize, item: Value) -> Result<Value, Resp> {
    if let Some(sync) = item.get("syncId").and_then(Value::as_str)
        && let Some(slot) = tx.sys.tables[t].find("syncId", sync)
    {
        // A repeated create with the same syncId is the same create.
        return Ok(tx.sys.tables[t].get(slot).unwrap_or_default());
    }
    tx.create(t, item)
        .map_err(|e| error(412, 3000, &format!("Ошибка сохранения объекта: {e}"), None))
}

fn update_one(tx: &mut Tx, t: usize, id: &str, patch: &Value) -> Result<Value, Resp> {
    let slot = tx.sys.tables[t].find_id(id).ok_or_else(|| not_found(id))?;
    let mut record = tx.sys.tables[t].get(slot).unwrap_or_default();
    merge_top(&mut record, patch);
    tx.update(t, slot, record)
        .map_err(|e| error(412, 3000, &format!("Ошибка сохранения объекта: {e}"), None))
}

fn post(tx: &mut Tx, req: &Req, t: usize, entity: &str) -> Resp {
    let Some(body) = req.json() else {
        return error(400, 2016, "Ошибка формата JSON", None);
    };
    match body {
        Value::Array(items) => {
            if items.len() > 1000 {
                return error(
                    400,
                    1002,
                    "В одном запросе можно передать не более 1000 элементов",
                    None,
                );
            }
            // All or nothing: check every item before the first write.
            for item in &items {
                if !item.is_object() {
                    return error(400, 2016, "Элемент массива должен быть объектом", None);
                }
                match update_target(item) {
                    Some(id) if tx.sys.tables[t].find_id(&id).is_none() => return not_found(&id),
                    Some(_) => {}
                    None => {
                        if let Some(resp) = invalid(entity, item) {
                            return resp;
                        }
                    }
                }
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let result = match update_target(&item) {
                    Some(id) => update_one(tx, t, &id, &item),
                    None => create_one(tx, t, item),
                };
                match result {
                    Ok(v) => out.push(v),
                    Err(resp) => return resp,
                }
            }
            Resp::json(200, Value::Array(out))
        }
        item @ Value::Object(_) => {
            if let Some(resp) = invalid(entity, &item) {
                return resp;
            }
            match create_one(tx, t, item) {
                Ok(v) => Resp::json(200, v),
                Err(resp) => resp,
            }
        }
        _ => error(400, 2016, "Ошибка формата JSON", None),
    }
}

impl Vendor for MoySklad {
    fn system(&self) -> System {
        System::MoySklad
    }

    fn specs(&self) -> &'static [Spec] {
        &SPECS
    }

    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)> {
        vec![
            ("token", super::store::secret(seed, "moysklad/token", 40)),
            ("login", "admin@recon-demo".to_string()),
            (
                "password",
                super::store::secret(seed, "moysklad/password", 16),
            ),
        ]
    }

    fn precheck(&self, req: &Req) -> Option<Resp> {
        (!req.accepts_gzip()).then(|| {
            error(
                415,
                1062,
                "Неверное значение заголовка 'Accept-Encoding'. Допустимое значение: 'gzip'",
                Some("Accept-Encoding"),
            )
        })
    }

    fn authenticate(&self, auth: &Auth, req: &Req) -> Access {
        // The token and the login are the same user: one rate-limit key.
        let login = auth.secret("login");
        if req.bearer() == Some(auth.secret("token")) {
            return Access::Key(login.to_string());
        }
        if let Some((user, password)) = req.basic()
            && user == login
            && password == auth.secret("password")
        {
            return Access::Key(login.to_string());
        }
        Access::Denied(error(
            401,
            1056,
            "Ошибка аутентификации: Неправильный пароль или имя пользователя или ключ авторизации",
            None,
        ))
    }

    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp {
        let Some(route) = req.route(BASE) else {
            return error(404, 1005, "Неизвестный адрес запроса", None);
        };
        let method = req.method.as_str();
        if let ("GET", ["context", "employee"]) = (method, route.as_slice()) {
            let ctx = tx.ctx();
            return Resp::json(
                200,
                json!({
                    "meta": employee_meta(&ctx),
                    "id": ctx.uuid("employee", 0),
                    "accountId": account_id(&ctx),
                    "name": "Администратор",
                    "email": tx.sys.auth.secret("login"),
                    "uid": tx.sys.auth.secret("login"),
                }),
            );
        }
        let (entity, id) = match route.as_slice() {
            ["entity", e] => (*e, None),
            ["entity", e, id] => (*e, Some(*id)),
            _ => return error(404, 1005, "Неизвестный адрес запроса", None),
        };
        let Some(t) = tx.table(entity) else {
            return error(404, 1005, &format!("Неизвестный тип: '{entity}'"), None);
        };
        match (method, id) {
            ("GET", None) => list(tx, req, t, entity),
            ("GET", Some(id)) => match tx.sys.tables[t].find_id(id) {
                Some(slot) => Resp::json(200, tx.sys.tables[t].get(slot).unwrap_or_default()),
                None => not_found(id),
            },
            ("POST", None) => post(tx, req, t, entity),
            ("PUT", Some(id)) => {
                let Some(patch @ Value::Object(_)) = req.json() else {
                    return error(400, 2016, "Ошибка формата JSON", None);
                };
                match update_one(tx, t, id, &patch) {
                    Ok(v) => Resp::json(200, v),
                    Err(resp) => resp,
                }
            }
            ("DELETE", Some(id)) => match tx.sys.tables[t].find_id(id) {
                Some(slot) => match tx.delete(t, slot) {
                    Ok(_) => Resp::empty(200),
                    Err(_) => not_found(id),
                },
                None => not_found(id),
            },
            _ => error(405, 1004, "Метод не поддерживается", None),
        }
    }

    fn server_error(&self) -> Resp {
        error(500, 1000, "Внутренняя ошибка сервера", None)
    }

    fn too_many(&self, wait: Duration, parallel: bool) -> Resp {
        let ms = wait.as_millis().max(1);
        let (code, text) = if parallel {
            (
                1073,
                "Превышено ограничение на количество параллельных запросов",
            )
        } else {
            (
                1049,
                "Превышено ограничение на количество запросов в единицу времени",
            )
        };
        error(429, code, text, None)
            .header("X-RateLimit-Limit", LIMIT)
            .header("X-RateLimit-Remaining", 0)
            .header("X-Lognex-Retry-TimeInterval", WINDOW_MS)
            .header("X-Lognex-Retry-After", ms)
            .header("X-Lognex-Reset", ms)
    }

    fn limit(&self) -> Limit {
        Limit {
            count: LIMIT,
            window: Duration::from_millis(WINDOW_MS),
            parallel: Some(5),
        }
    }

    fn limit_headers(&self, remaining: usize) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", LIMIT.to_string()),
            ("X-RateLimit-Remaining", remaining.to_string()),
            ("X-Lognex-Retry-TimeInterval", WINDOW_MS.to_string()),
        ]
    }

    fn gzip(&self) -> bool {
        true
    }

    fn prepare(
        &self,
        sys: &Sys,
        t: usize,
        record: Value,
        slot: usize,
        times: Times,
        before: Option<&Value>,
    ) -> Result<Value, String> {
        let ctx = &sys.ctx;
        let entity = SPECS[t].name;
        let Value::Object(mut fields) = record else {
            return Err("объект должен быть JSON-объектом".into());
        };
        match before {
            Some(b) => {
                let mut v = Value::Object(fields);
                keep_fields(&mut v, b, &["id", "meta", "accountId", "created"]);
                fields = match v {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
            }
            None => {
                for f in SERVER_FIELDS {
                    fields.remove(*f);
                }
                let id = ctx.uuid(entity, slot);
                let mut head = Map::new();
                head.insert("meta".into(), meta(ctx, entity, &id));
                head.insert("id".into(), json!(id));
                head.insert("accountId".into(), json!(account_id(ctx)));
                head.insert("owner".into(), json!({ "meta": employee_meta(ctx) }));
                head.insert("shared".into(), json!(true));
                head.insert("created".into(), json!(msk_millis(times.created)));
                head.extend(fields);
                fields = head;
                fields
                    .entry("externalCode")
                    .or_insert_with(|| json!(external_code(ctx, entity, slot)));
                fields.entry("archived").or_insert(json!(false));
                match entity {
                    "counterparty" => {
                        fields.entry("companyType").or_insert(json!("legal"));
                    }
                    "customerorder" => {
                        fields
                            .entry("name")
                            .or_insert_with(|| json!(format!("{:05}", slot + 1)));
                        fields
                            .entry("moment")
                            .or_insert_with(|| json!(msk_millis(times.created)));
                        fields.entry("applicable").or_insert(json!(true));
                    }
                    _ => {}
                }
            }
        }
        fields.insert("updated".into(), json!(msk_millis(times.updated)));
        if entity == "customerorder" {
            let positions = fields
                .get("positions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            fields.insert("sum".into(), json!(sum_of(&positions)));
        }
        Ok(Value::Object(fields))
    }
}
