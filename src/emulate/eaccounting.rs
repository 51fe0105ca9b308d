//! Visma eAccounting API v2: customers, articles and orders in PascalCase,
//! `$page`/`$pagesize` pagination with a `Meta` block whose `ServerTimeUtc`
//! is the next incremental cursor, OData-style `$filter`, whole-record PUTs,
//! OAuth2 with single-use rotating refresh tokens, and 600 requests per
//! minute per endpoint answered with the wait only in the message.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::fake::{self, Drift, Region};
use super::store::{self, Ctx, Spec, TimeField, Times, Window};
use super::{
    Access, Auth, Limit, Req, Resp, Sys, System, Tx, Vendor, parse_time, utc_millis, utc_zone,
};

pub(super) struct EAccounting;

const BASE: &[&str] = &["v2"];
const LIMIT: usize = 600;
const MAX_PAGE: usize = 1000;

static SPECS: [Spec; 3] = [
    Spec {
        name: "customers",
        pk: "Id",
        keys: &["Id", "CustomerNumber"],
        precision: 1,
        generate: customer,
        seeded_slot: |ctx, field, value| match field {
            "Id" => ctx.uuid_slot("customers", value),
            "CustomerNumber" => value.parse::<usize>().ok()?.checked_sub(1),
            _ => None,
        },
    },
    Spec {
        name: "articles",
        pk: "Id",
        keys: &["Id", "Number"],
        precision: 1,
        generate: article,
        seeded_slot: |ctx, field, value| match field {
            "Id" => ctx.uuid_slot("articles", value),
            "Number" => value
                .strip_prefix("P-")?
                .parse::<usize>()
                .ok()?
                .checked_sub(1),
            _ => None,
        },
    },
    Spec {
        name: "orders",
        pk: "Id",
        keys: &["Id", "Number"],
        precision: 1,
        generate: order,
        seeded_slot: |ctx, field, value| match field {
            "Id" => ctx.uuid_slot("orders", value),
            "Number" => value.parse::<usize>().ok()?.checked_sub(1),
            _ => None,
        },
    },
];

/// The field that holds a record's last change: orders name it differently.
fn changed_field(entity: &str) -> &'static str {
    if entity == "orders" {
        "ModifiedUtc"
    } else {
        "ChangedUtc"
    }
}

fn required(entity: &str) -> &'static [&'static str] {
    match entity {
        "customers" => &[
            "Name",
            "InvoiceCity",
            "InvoicePostalCode",
            "TermsOfPaymentId",
            "IsPrivatePerson",
        ],
        "articles" => &["Number", "Name"],
        _ => &["CustomerId"],
    }
}

fn terms_id(ctx: &Ctx, k: u64) -> String {
    ctx.uuid("termsofpayment", k as usize)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

struct Party {
    name: String,
    email: String,
    phone: String,
    address: fake::Address,
    vat: Option<String>,
    contact: Option<fake::Person>,
}

fn party(ctx: &Ctx, slot: usize) -> Party {
    let person = fake::person(ctx.seed, Region::Eu, slot);
    if fake::is_company(ctx.seed, Region::Eu, slot) {
        let c = fake::company(ctx.seed, Region::Eu, slot);
        Party {
            name: c.name,
            email: c.email,
            phone: c.phone,
            address: c.address,
            vat: Some(c.tax_id),
            contact: Some(person),
        }
    } else {
        Party {
            name: person.full_name(),
            email: person.email.clone(),
            phone: person.phone.clone(),
            address: person.address.clone(),
            vat: None,
            contact: None,
        }
    }
}

fn customer(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let p = party(ctx, slot);
    let mut drift = Drift::new(ctx.seed, "eaccounting", slot);
    let mut rng = ctx.rng("customers/extra", slot);
    let country = p.address.country;
    json!({
        "Id": ctx.uuid("customers", slot),
        "CustomerNumber": (slot + 1).to_string(),
        "CorporateIdentityNumber": p.vat,
        "ContactPersonEmail": p.contact.as_ref().map(|c| c.email.clone()),
        "ContactPersonMobile": null,
        "ContactPersonName": p.contact.as_ref().map(fake::Person::full_name),
        "ContactPersonPhone": null,
        "CurrencyCode": country.currency,
        "GLN": null,
        "EmailAddress": drift.email(&p.email),
        "InvoiceAddress1": p.address.line(),
        "InvoiceAddress2": null,
        "InvoiceCity": p.address.city,
        "InvoiceCountryCode": country.code,
        "InvoicePostalCode": p.address.postal,
        "DeliveryCustomerName": null,
        "DeliveryAddress1": null,
        "DeliveryAddress2": null,
        "DeliveryCity": null,
        "DeliveryCountryCode": null,
        "DeliveryPostalCode": null,
        "Name": p.name,
        "Note": null,
        "ReverseChargeOnConstructionServices": false,
        "WebshopCustomerNumber": null,
        "MobilePhone": drift.phone(&p.phone),
        "Telephone": null,
        "TermsOfPaymentId": terms_id(ctx, rng.below(3)),
        "VatNumber": p.vat,
        "WwwAddress": null,
        "LastInvoiceDate": null,
        "IsPrivatePerson": p.contact.is_none(),
        "IsForeign": country.code != "SE",
        "DiscountPercentage": 0.0,
        "PriceListId": null,
        "IsActive": true,
        "ForceBookkeepVat": false,
        "ChangedUtc": utc_millis(times.updated),
    })
}

fn article(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let p = fake::product(ctx.seed, Region::Eu, slot);
    let net = p.price as f64 / 100.0;
    json!({
        "Id": ctx.uuid("articles", slot),
        "IsActive": true,
        "Number": p.code,
        "Name": p.name,
        "NameEnglish": p.name,
        "NetPrice": net,
        "GrossPrice": round2(net * 1.25),
        "PurchasePrice": round2(net * 0.6),
        "CodingId": ctx.uuid("coding", 0),
        "CodingName": "Varor 25% moms",
        "UnitId": ctx.uuid("unit", 0),
        "UnitName": "st",
        "UnitAbbreviation": "st",
        "IsStock": true,
        "StockBalance": p.stock as f64,
        "StockBalanceReserved": 0.0,
        "StockBalanceAvailable": p.stock as f64,
        "FreightCosts": 0.0,
        "CreatedUtc": utc_millis(times.created),
        "ChangedUtc": utc_millis(times.updated),
    })
}

/// eAccounting's order statuses: 1 draft, 2 ongoing, 3 shipped, 4 invoiced.
const STATUS: [u64; 5] = [1, 2, 2, 3, 4];

fn order(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let o = fake::order(ctx.seed, Region::Eu, slot, ctx.n);
    let buyer = party(ctx, o.customer);
    let rows: Vec<Value> = o
        .lines
        .iter()
        .enumerate()
        .map(|(i, &(p, qty))| {
            let product = fake::product(ctx.seed, Region::Eu, p);
            json!({
                "LineNumber": i,
                "ArticleId": ctx.uuid("articles", p),
                "ArticleNumber": product.code,
                "IsTextRow": false,
                "Text": product.name,
                "UnitPrice": product.price as f64 / 100.0,
                "DiscountPercentage": 0.0,
                "Quantity": qty as f64,
                "DeliveredQuantity": 0.0,
                "WorkCostType": 0,
                "IsWorkCost": false,
            })
        })
        .collect();
    let amount = rows_amount(&rows);
    let date = utc_millis(times.created);
    json!({
        "Id": ctx.uuid("orders", slot),
        "Amount": amount,
        "CustomerId": ctx.uuid("customers", o.customer),
        "CurrencyCode": buyer.address.country.currency,
        "VatAmount": round2(amount * 0.25),
        "RoundingsAmount": 0.0,
        "Number": slot + 1,
        "OrderDate": format!("{}T00:00:00", &date[..10]),
        "Status": STATUS[o.stage],
        "CustomerName": buyer.name,
        "InvoiceAddress1": buyer.address.line(),
        "InvoiceCity": buyer.address.city,
        "InvoiceCountryCode": buyer.address.country.code,
        "InvoicePostalCode": buyer.address.postal,
        "YourReference": null,
        "OurReference": null,
        "Rows": rows,
        "CreatedUtc": date,
        "ModifiedUtc": utc_millis(times.updated),
    })
}

fn rows_amount(rows: &[Value]) -> f64 {
    round2(
        rows.iter()
            .map(|r| {
                let f = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                f("UnitPrice") * f("Quantity") * (1.0 - f("DiscountPercentage") / 100.0)
            })
            .sum(),
    )
}

fn error(status: u16, code: u32, message: &str) -> Resp {
    Resp::json(
        status,
        json!({
            "ErrorCode": code,
            "DeveloperErrorMessage": message,
            "ErrorId": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

/// `$filter`: `Field op value` conditions joined by `and`; times bound
/// the window, other fields are compared as text.
struct Filter {
    window: Window,
    conditions: Vec<(String, String, String)>,
}

fn parse_filter(text: &str, entity: &str) -> Result<Filter, String> {
    let mut filter = Filter {
        window: Window::default(),
        conditions: Vec::new(),
    };
    let mut parts = Vec::new();
    let mut rest = text;
    // `and` in any case; the index is the same in the lower-cased copy
    // because ASCII lower-casing keeps every byte in place.
    while let Some(i) = rest.to_ascii_lowercase().find(" and ") {
        parts.push(&rest[..i]);
        rest = &rest[i + 5..];
    }
    parts.push(rest);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let mut it = part.splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("'{part}' is not 'Field operator value'"));
        };
        let value = value.trim();
        let value = value
            .strip_prefix("datetime'")
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let op = op.to_ascii_lowercase();
        let time_field = match field {
            f if f == changed_field(entity) => Some(TimeField::Updated),
            "CreatedUtc" if entity != "customers" => Some(TimeField::Created),
            _ => None,
        };
        if let Some(tf) = time_field {
            let t = parse_time(value, utc_zone())
                .ok_or_else(|| format!("'{value}' is not a date-time"))?;
            filter.window.field = tf;
            let w = &mut filter.window;
            match op.as_str() {
                "gt" => w.from = Some((t, false)),
                "ge" => w.from = Some((t, true)),
                "lt" => w.to = Some((t, false)),
                "le" => w.to = Some((t, true)),
                "eq" => {
                    w.from = Some((t, true));
                    w.to = Some((t, true));
                }
                _ => return Err(format!("operator '{op}' is not supported for {field}")),
            }
        } else if op == "eq" || op == "ne" {
            filter
                .conditions
                .push((field.to_string(), op, value.to_string()));
        } else {
            return Err(format!("operator '{op}' is not supported for {field}"));
        }
    }
    Ok(filter)
}

fn list(tx: &Tx, req: &Req, t: usize) -> Resp {
    let entity = tx.sys.tables[t].name();
    let page = match req.query("$page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => return error(400, 4000, "$page must be a positive integer."),
    };
    let size = match req.query("$pagesize").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(s)) if (1..=MAX_PAGE).contains(&s) => s,
        _ => {
            return error(
                400,
                4000,
                &format!("$pagesize must be between 1 and {MAX_PAGE}."),
            );
        }
    };
    let filter = match req.query("$filter").map(|f| parse_filter(f, entity)) {
        None => Filter {
            window: Window::default(),
            conditions: Vec::new(),
        },
        Some(Ok(f)) => f,
        Some(Err(e)) => return error(400, 4000, &format!("Invalid $filter: {e}")),
    };
    let table = &tx.sys.tables[t];
    let offset = (page - 1) * size;
    let data = if filter.conditions.is_empty() {
        table.page(&filter.window, offset, size)
    } else {
        table.page_where(&filter.window, offset, size, &|r| {
            filter.conditions.iter().all(|(field, op, value)| {
                let actual = r.get(field).and_then(store::key_text).unwrap_or_default();
                let equal = actual.eq_ignore_ascii_case(value)
                    || r.get(field).and_then(Value::as_bool).map(|b| b.to_string())
                        == Some(value.to_ascii_lowercase());
                (op == "eq") == equal
            })
        })
    };
    let meta = json!({
        "CurrentPage": page,
        "PageSize": size,
        "TotalNumberOfPages": data.total.div_ceil(size),
        "TotalNumberOfResults": data.total,
        "ServerTimeUtc": utc_millis(tx.now()),
    });
    Resp::page(move || json!({ "Meta": meta, "Data": data.records() }))
}

fn invalid(entity: &str, record: &Value) -> Option<Resp> {
    let missing: Vec<&str> = required(entity)
        .iter()
        .copied()
        .filter(|f| match record.get(*f) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            _ => false,
        })
        .collect();
    (!missing.is_empty()).then(|| {
        let text: Vec<String> = missing
            .iter()
            .map(|f| format!("The {f} field is required."))
            .collect();
        error(400, 4000, &text.join(" "))
    })
}

impl Vendor for EAccounting {
    fn system(&self) -> System {
        System::EAccounting
    }

    fn specs(&self) -> &'static [Spec] {
        &SPECS
    }

    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)> {
        vec![
            (
                "client_id",
                format!("recon{}", store::secret(seed, "eaccounting/client_id", 8)),
            ),
            (
                "client_secret",
                store::secret(seed, "eaccounting/client_secret", 40),
            ),
        ]
    }

    fn oauth(&self) -> bool {
        true
    }

    fn authenticate(&self, auth: &Auth, req: &Req) -> Access {
        if req
            .route(&["connect", "token"])
            .is_some_and(|r| r.is_empty())
        {
            return Access::Public;
        }
        // Limits count per app, not per access token: a refresh starts no new window.
        match req.bearer() {
            Some(_) if auth.bearer_ok(req) => Access::Key(auth.secret("client_id").to_string()),
            _ => Access::Denied(error(
                401,
                4001,
                "Authorization has been denied for this request.",
            )),
        }
    }

    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp {
        if req
            .route(&["connect", "token"])
            .is_some_and(|r| r.is_empty())
        {
            if req.method != "POST" {
                return error(405, 4050, "The token endpoint takes POST.");
            }
            let (status, body) = tx.sys.auth.refresh(req);
            return Resp::json(status, body);
        }
        let Some(route) = req.route(BASE) else {
            return error(404, 4004, "The requested resource does not exist.");
        };
        let method = req.method.as_str();
        if let ("GET", ["companysettings"]) = (method, route.as_slice()) {
            return Resp::json(
                200,
                json!({
                    "Name": "Recon Demo AB",
                    "CorporateIdentityNumber": "556677-8899",
                    "CountryCode": "SE",
                    "CurrencyCode": "SEK",
                    "Email": "admin@recon-demo.se",
                }),
            );
        }
        let (entity, id) = match route.as_slice() {
            [e] => (*e, None),
            [e, id] => (*e, Some(*id)),
            _ => return error(404, 4004, "The requested resource does not exist."),
        };
        let Some(t) = tx.table(entity) else {
            return error(404, 4004, "The requested resource does not exist.");
        };
        let not_found = || error(404, 4004, "The requested entity was not found.");
        match (method, id) {
            ("GET", None) => list(tx, req, t),
            ("GET", Some(id)) => match tx.sys.tables[t].find_id(id) {
                Some(slot) => Resp::json(200, tx.sys.tables[t].get(slot).unwrap_or_default()),
                None => not_found(),
            },
            ("POST", None) => {
                let Some(body @ Value::Object(_)) = req.json() else {
                    return error(400, 4000, "The request body must be a JSON object.");
                };
                if let Some(resp) = invalid(entity, &body) {
                    return resp;
                }
                match tx.create(t, body) {
                    Ok(r) => Resp::json(201, r),
                    Err(e) => error(400, 4000, &e),
                }
            }
            ("PUT", Some(id)) => {
                let Some(slot) = tx.sys.tables[t].find_id(id) else {
                    return not_found();
                };
                let Some(body @ Value::Object(_)) = req.json() else {
                    return error(400, 4000, "The request body must be a JSON object.");
                };
                if let Some(resp) = invalid(entity, &body) {
                    return resp;
                }
                match tx.update(t, slot, body) {
                    Ok(r) => Resp::json(200, r),
                    Err(e) => error(400, 4000, &e),
                }
            }
            ("DELETE", Some(id)) => match tx.sys.tables[t].find_id(id) {
                Some(slot) => match tx.delete(t, slot) {
                    Ok(_) => Resp::empty(204),
                    Err(_) => not_found(),
                },
                None => not_found(),
            },
            _ => error(405, 4050, "The requested method is not allowed."),
        }
    }

    fn server_error(&self) -> Resp {
        error(500, 5000, "An unexpected error has occurred.")
    }

    fn too_many(&self, wait: Duration, _parallel: bool) -> Resp {
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        error(
            429,
            4010,
            &format!("Too many requests. Try again in {seconds} seconds."),
        )
    }

    fn limit(&self) -> Limit {
        Limit {
            count: LIMIT,
            window: Duration::from_secs(60),
            parallel: None,
        }
    }

    fn limit_scope(&self, req: &Req) -> String {
        let endpoint = req
            .route(BASE)
            .and_then(|r| r.first().map(|s| s.to_ascii_lowercase()))
            .unwrap_or_default();
        format!(" /{endpoint}")
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
        let entity = SPECS[t].name;
        let table = &sys.tables[t];
        let Value::Object(mut r) = record else {
            return Err("The request body must be a JSON object.".into());
        };
        let changed = changed_field(entity);
        for k in ["Id", "CreatedUtc", changed] {
            r.remove(k);
        }
        let mut out = Map::new();
        out.insert("Id".into(), json!(sys.ctx.uuid(entity, slot)));
        let number_field = match entity {
            "customers" => Some("CustomerNumber"),
            "orders" => Some("Number"),
            _ => None,
        };
        if let Some(field) = number_field
            && r.get(field).is_none_or(Value::is_null)
        {
            let kept = before.and_then(|b| b.get(field)).cloned();
            let number = kept.unwrap_or_else(|| {
                let mut n = slot + 1;
                while table.find(field, &n.to_string()).is_some() {
                    n += 1;
                }
                if entity == "customers" {
                    json!(n.to_string())
                } else {
                    json!(n)
                }
            });
            r.insert(field.into(), number);
        }
        for key in ["CustomerNumber", "Number"] {
            if let Some(k) = r.get(key).and_then(store::key_text)
                && table.find(key, &k).is_some_and(|other| other != slot)
            {
                return Err(format!("{key} {k} is already in use."));
            }
        }
        if entity == "orders" {
            let rows = r
                .get("Rows")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            r.insert("Amount".into(), json!(rows_amount(&rows)));
        }
        out.extend(r);
        if before.is_none() {
            // What the UI fills in for a user who leaves them: admin creates
            // stay valid for a later read-modify-write PUT.
            match entity {
                "customers" => {
                    out.entry("TermsOfPaymentId")
                        .or_insert_with(|| json!(terms_id(&sys.ctx, 0)));
                    out.entry("IsPrivatePerson").or_insert(json!(false));
                    out.entry("CurrencyCode").or_insert(json!("SEK"));
                    out.entry("IsActive").or_insert(json!(true));
                }
                "articles" => {
                    out.entry("IsActive").or_insert(json!(true));
                }
                _ => {
                    out.entry("Status").or_insert(json!(1));
                    out.entry("Rows").or_insert(json!([]));
                }
            }
        }
        if entity != "customers" {
            out.insert("CreatedUtc".into(), json!(utc_millis(times.created)));
        }
        out.insert(changed.into(), json!(utc_millis(times.updated)));
        Ok(Value::Object(out))
    }
}
