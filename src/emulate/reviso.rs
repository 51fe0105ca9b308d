//! Reviso REST: customers (and each customer's contacts) with
//! `skippages`/`pagesize` pagination whose `nextPage` is an absolute URL,
//! `filter=lastUpdated$gte:...`, creates that require the accounting
//! settings, updates that replace the whole record, and customer numbers
//! that can be renumbered (the one change a link by number does not survive).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::fake::{self, Drift, Region};
use super::store::{self, Ctx, Spec, Times, Window};
use super::{
    Access, Auth, Limit, Req, Resp, Sys, System, Tx, Vendor, parse_time, set_param, utc_seconds,
    utc_zone, with_query,
};

pub(super) struct Reviso;

/// Reviso publishes no request limit; this one makes clients' backoff run.
const LIMIT: usize = 300;
const MAX_PAGE: usize = 1000;
const REQUIRED: [(&str, Option<&str>); 5] = [
    ("name", None),
    ("currency", None),
    ("customerGroup", Some("customerGroupNumber")),
    ("vatZone", Some("vatZoneNumber")),
    ("paymentTerms", Some("paymentTermsNumber")),
];

static SPECS: [Spec; 1] = [Spec {
    name: "customers",
    pk: "customerNumber",
    keys: &["customerNumber"],
    precision: 1000,
    generate: customer,
    seeded_slot: |_, field, value| match field {
        "customerNumber" => value.parse::<usize>().ok()?.checked_sub(1),
        _ => None,
    },
}];

fn link(ctx: &Ctx, path: &str) -> String {
    format!("{}/{path}", ctx.base())
}

fn customer(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let number = slot + 1;
    let person = fake::person(ctx.seed, Region::Eu, slot);
    let mut drift = Drift::new(ctx.seed, "reviso", slot);
    let mut rng = ctx.rng("customers/extra", slot);
    let legal = fake::is_company(ctx.seed, Region::Eu, slot);
    let (name, email, phone, addr, vat) = if legal {
        let c = fake::company(ctx.seed, Region::Eu, slot);
        (c.name, c.email, c.phone, c.address, Some(c.tax_id))
    } else {
        let name = person.full_name();
        (name, person.email, person.phone, person.address, None)
    };
    let country = addr.country;
    // The agreement is Italian: Italian customers are domestic, the rest EU.
    let zone = if country.code == "IT" { 1 } else { 2 };
    let group = if legal { 1 } else { 2 };
    let terms = 1 + rng.below(4);
    let mut v = json!({
        "customerNumber": number,
        "name": name,
        "currency": country.currency,
        "customerGroup": { "customerGroupNumber": group, "self": link(ctx, &format!("customer-groups/{group}")) },
        "vatZone": { "vatZoneNumber": zone, "self": link(ctx, &format!("vat-zones/{zone}")) },
        "paymentTerms": { "paymentTermsNumber": terms, "self": link(ctx, &format!("payment-terms/{terms}")) },
        "email": drift.email(&email),
        "address": addr.line(),
        "zip": addr.postal,
        "city": addr.city,
        "country": country.name,
        "countryCode": { "code": country.code, "self": link(ctx, &format!("countries/{}", country.code)) },
        "vatNumber": vat,
        "telephoneAndFaxNumber": drift.phone(&phone),
        "balance": 0.0,
        "dueAmount": 0.0,
        "lastUpdated": utc_seconds(times.updated),
        "contacts": link(ctx, &format!("customers/{number}/contacts")),
        "self": link(ctx, &format!("customers/{number}")),
    });
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    v
}

fn error(status: u16, message: &str, code: &str, hint: &str, errors: Vec<Value>) -> Resp {
    Resp::json(
        status,
        json!({
            "message": message,
            "errorCode": code,
            "developerHint": hint,
            "logId": uuid::Uuid::new_v4().simple().to_string(),
            "httpStatusCode": status,
            "errors": errors,
        }),
    )
}

fn not_found(number: &str) -> Resp {
    error(
        404,
        &format!("Customer {number} not found."),
        "E07000",
        "The customer number in the URL does not exist (it may have been renumbered).",
        Vec::new(),
    )
}

/// The fields a create or replace lacks, as Reviso's validation errors.
fn missing(record: &Value) -> Vec<Value> {
    REQUIRED
        .iter()
        .filter(|(field, inner)| {
            let v = record.get(*field);
            match inner {
                None => v
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty()),
                Some(k) => !v.and_then(|o| o.get(*k)).is_some_and(Value::is_u64),
            }
        })
        .map(|(field, inner)| {
            let property = match inner {
                Some(k) => format!("{field}.{k}"),
                None => field.to_string(),
            };
            json!({
                "propertyName": property,
                "errorMessage": format!("Property '{property}' is required."),
                "errorCode": "E06010",
                "inputValue": null,
            })
        })
        .collect()
}

fn validation(errors: Vec<Value>) -> Resp {
    error(
        400,
        "Validation error.",
        "E04300",
        "Inspect the errors property and correct the request.",
        errors,
    )
}

/// A `filter` value: `field$op:value` conditions joined by `$and:`.
struct Filter {
    window: Window,
    conditions: Vec<(String, String, String)>,
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut filter = Filter {
        window: Window::default(),
        conditions: Vec::new(),
    };
    for part in text.split("$and:").filter(|p| !p.is_empty()) {
        let (field, rest) = part
            .split_once('$')
            .ok_or_else(|| format!("`{part}` is not field$operator:value"))?;
        let (op, value) = rest
            .split_once(':')
            .ok_or_else(|| format!("`{part}` is not field$operator:value"))?;
        if field == "lastUpdated" {
            let t = parse_time(value, utc_zone())
                .ok_or_else(|| format!("`{value}` is not a date-time"))?;
            let w = &mut filter.window;
            match op {
                "gte" => w.from = Some((t, true)),
                "gt" => w.from = Some((t, false)),
                "lte" => w.to = Some((t, true)),
                "lt" => w.to = Some((t, false)),
                "eq" => {
                    w.from = Some((t, true));
                    w.to = Some((t, true));
                }
                _ => return Err(format!("operator `${op}` does not apply to lastUpdated")),
            }
        } else {
            if !["eq", "ne", "like"].contains(&op) {
                return Err(format!("unknown operator `${op}`"));
            }
            filter
                .conditions
                .push((field.to_string(), op.to_string(), value.to_string()));
        }
    }
    Ok(filter)
}

fn passes(record: &Value, (field, op, value): &(String, String, String)) -> bool {
    let actual = record
        .get(field)
        .and_then(store::key_text)
        .unwrap_or_default();
    match op.as_str() {
        "eq" => actual == *value,
        "ne" => actual != *value,
        _ => actual
            .to_lowercase()
            .contains(&value.trim_matches('*').to_lowercase()),
    }
}

fn list(tx: &Tx, req: &Req, t: usize) -> Resp {
    let number = |name: &str, default: usize| match req.query(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| name.to_string()),
    };
    let (skip, size) = match (number("skippages", 0), number("pagesize", 20)) {
        (Ok(s), Ok(p)) if (1..=MAX_PAGE).contains(&p) => (s, p),
        (Err(name), _) | (_, Err(name)) => {
            return error(
                400,
                &format!("Query parameter '{name}' must be a non-negative integer."),
                "E04010",
                "Check the paging parameters.",
                Vec::new(),
            );
        }
        _ => {
            return error(
                400,
                &format!("The page size must be between 1 and {MAX_PAGE}."),
                "E04020",
                "Lower pagesize.",
                Vec::new(),
            );
        }
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
                &format!("Invalid filter: {e}"),
                "E04030",
                "Filters look like lastUpdated$gte:2024-01-01T00:00:00Z.",
                Vec::new(),
            );
        }
    };
    let table = &tx.sys.tables[t];
    let offset = skip * size;
    let page = if filter.conditions.is_empty() {
        table.page(&filter.window, offset, size)
    } else {
        table.page_where(&filter.window, offset, size, &|r| {
            filter.conditions.iter().all(|c| passes(r, c))
        })
    };
    let ctx = tx.ctx();
    let url = link(&ctx, "customers");
    let at = |s: usize| {
        let params = set_param(&req.query, "skippages", s.to_string());
        with_query(&url, &set_param(&params, "pagesize", size.to_string()))
    };
    let last = page.total.div_ceil(size).saturating_sub(1);
    let mut pagination = json!({
        "maxPageSizeAllowed": MAX_PAGE,
        "skipPages": skip,
        "pageSize": size,
        "results": page.total,
        "resultsWithoutFilter": table.len(),
        "firstPage": at(0),
        "lastPage": at(last),
    });
    if (skip + 1) * size < page.total {
        pagination["nextPage"] = json!(at(skip + 1));
    }
    if skip > 0 {
        pagination["previousPage"] = json!(at(skip - 1));
    }
    let this = format!("{}{}", ctx.root, req.target);
    Resp::page(
        move || json!({ "collection": page.records(), "pagination": pagination, "self": this }),
    )
}

/// A customer's contacts: seeded customers have their person as the one contact.
fn contacts(tx: &Tx, t: usize, number: &str) -> Resp {
    let table = &tx.sys.tables[t];
    let Some(slot) = table.find_id(number) else {
        return not_found(number);
    };
    let ctx = tx.ctx();
    let this = link(&ctx, &format!("customers/{number}/contacts"));
    let collection: Vec<Value> = if slot < ctx.n {
        let p = fake::person(ctx.seed, Region::Eu, slot);
        let id = slot + 1;
        vec![json!({
            "customerContactNumber": id,
            "name": p.full_name(),
            "email": p.email,
            "phone": p.phone,
            "customer": { "customerNumber": number.parse::<u64>().unwrap_or(0), "self": link(&ctx, &format!("customers/{number}")) },
            "self": format!("{this}/{id}"),
        })]
    } else {
        Vec::new()
    };
    let total = collection.len();
    Resp::json(
        200,
        json!({
            "collection": collection,
            "pagination": { "maxPageSizeAllowed": MAX_PAGE, "skipPages": 0, "pageSize": 20, "results": total, "resultsWithoutFilter": total, "firstPage": this, "lastPage": this },
            "self": this,
        }),
    )
}

/// Give a customer a new number; everything else stays.
pub(super) fn renumber(tx: &mut Tx, old: u64, new: u64) -> Result<Value, (u16, String)> {
    let t = tx
        .table("customers")
        .ok_or((404, "no customers".to_string()))?;
    let table = &tx.sys.tables[t];
    let slot = table
        .find_id(&old.to_string())
        .ok_or((404, format!("no Reviso customer {old}")))?;
    if new == 0 {
        return Err((400, "customer numbers start at 1".into()));
    }
    if old != new && table.find_id(&new.to_string()).is_some() {
        return Err((409, format!("customer number {new} is already in use")));
    }
    let mut record = table.get(slot).unwrap_or_default();
    record["customerNumber"] = json!(new);
    tx.update(t, slot, record).map_err(|e| (400, e))
}

impl Vendor for Reviso {
    fn system(&self) -> System {
        System::Reviso
    }

    fn specs(&self) -> &'static [Spec] {
        &SPECS
    }

    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)> {
        vec![
            ("app_secret", store::secret(seed, "reviso/app_secret", 36)),
            (
                "agreement_grant",
                store::secret(seed, "reviso/agreement_grant", 36),
            ),
        ]
    }

    fn authenticate(&self, auth: &Auth, req: &Req) -> Access {
        let app = req.header("x-appsecrettoken");
        let grant = req.header("x-agreementgranttoken");
        if app == Some(auth.secret("app_secret")) && grant == Some(auth.secret("agreement_grant")) {
            return Access::Key(auth.secret("agreement_grant").to_string());
        }
        Access::Denied(error(
            401,
            "The request is not authorized.",
            "E04010",
            "Send a valid X-AppSecretToken and X-AgreementGrantToken header.",
            Vec::new(),
        ))
    }

    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp {
        let path: Vec<&str> = req.path.iter().map(String::as_str).collect();
        let Some(t) = tx.table("customers") else {
            return not_found("");
        };
        match (req.method.as_str(), path.as_slice()) {
            ("GET", ["self"]) => Resp::json(
                200,
                json!({
                    "agreementNumber": 100_000 + tx.ctx().seed % 900_000,
                    "company": { "name": "Recon Demo S.r.l.", "vatNumber": "IT01234567890" },
                    "userName": "recon-demo",
                    "self": link(&tx.ctx(), "self"),
                }),
            ),
            ("GET", ["customers"]) => list(tx, req, t),
            ("GET", ["customers", n]) => match tx.sys.tables[t].find_id(n) {
                Some(slot) => Resp::json(200, tx.sys.tables[t].get(slot).unwrap_or_default()),
                None => not_found(n),
            },
            ("GET", ["customers", n, "contacts"]) => contacts(tx, t, n),
            ("POST", ["customers"]) => {
                let Some(body @ Value::Object(_)) = req.json() else {
                    return validation(vec![
                        json!({ "errorMessage": "The body must be a JSON object." }),
                    ]);
                };
                let errors = missing(&body);
                if !errors.is_empty() {
                    return validation(errors);
                }
                match tx.create(t, body) {
                    Ok(r) => Resp::json(201, r),
                    Err(e) => validation(vec![
                        json!({ "propertyName": "customerNumber", "errorMessage": e }),
                    ]),
                }
            }
            ("PUT", ["customers", n]) => {
                let Some(slot) = tx.sys.tables[t].find_id(n) else {
                    return not_found(n);
                };
                let Some(mut body @ Value::Object(_)) = req.json() else {
                    return validation(vec![
                        json!({ "errorMessage": "The body must be a JSON object." }),
                    ]);
                };
                let errors = missing(&body);
                if !errors.is_empty() {
                    return validation(errors);
                }
                // The URL names the customer; a number in the body cannot move it.
                body["customerNumber"] = json!(n.parse::<u64>().unwrap_or(0));
                match tx.update(t, slot, body) {
                    Ok(r) => Resp::json(200, r),
                    Err(e) => validation(vec![json!({ "errorMessage": e })]),
                }
            }
            ("DELETE", ["customers", n]) => match tx.sys.tables[t].find_id(n) {
                Some(slot) => match tx.delete(t, slot) {
                    Ok(_) => Resp::empty(204),
                    Err(_) => not_found(n),
                },
                None => not_found(n),
            },
            _ => error(
                404,
                "The requested resource does not exist.",
                "E00404",
                "Check the URL.",
                Vec::new(),
            ),
        }
    }

    fn server_error(&self) -> Resp {
        error(
            500,
            "An unexpected error occurred.",
            "E00500",
            "Retry the request later.",
            Vec::new(),
        )
    }

    fn too_many(&self, wait: Duration, _parallel: bool) -> Resp {
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        error(
            429,
            &format!("Too many requests. Retry after {seconds} seconds."),
            "E00429",
            "Slow down.",
            Vec::new(),
        )
        .header("Retry-After", seconds)
    }

    fn limit(&self) -> Limit {
        Limit {
            count: LIMIT,
            window: Duration::from_secs(60),
            parallel: None,
        }
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
        let table = &sys.tables[t];
        let Value::Object(mut r) = record else {
            return Err("The body must be a JSON object.".into());
        };
        let number = match r.get("customerNumber") {
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or("customerNumber must be a positive integer.")?,
            None => match before
                .and_then(|b| b.get("customerNumber"))
                .and_then(Value::as_u64)
            {
                Some(n) => n,
                None => {
                    let mut n = slot as u64 + 1;
                    while table.find_id(&n.to_string()).is_some() {
                        n += 1;
                    }
                    n
                }
            },
        };
        if table
            .find_id(&number.to_string())
            .is_some_and(|other| other != slot)
        {
            return Err(format!("Customer number {number} is already in use."));
        }
        for k in ["customerNumber", "self", "contacts", "lastUpdated"] {
            r.remove(k);
        }
        let ctx = &sys.ctx;
        let mut out = Map::new();
        out.insert("customerNumber".into(), json!(number));
        out.extend(r);
        if before.is_none() {
            // What the UI fills in for a user who leaves them: admin creates
            // stay valid for a later read-modify-write PUT.
            out.entry("currency").or_insert(json!("EUR"));
            for (field, inner) in REQUIRED.iter().filter_map(|(f, i)| Some((*f, (*i)?))) {
                out.entry(field).or_insert(json!({ inner: 1 }));
            }
        }
        // References carry their own link, whatever the client sent.
        for (field, inner, path) in [
            ("customerGroup", "customerGroupNumber", "customer-groups"),
            ("vatZone", "vatZoneNumber", "vat-zones"),
            ("paymentTerms", "paymentTermsNumber", "payment-terms"),
            ("countryCode", "code", "countries"),
        ] {
            if let Some(Value::Object(o)) = out.get_mut(field)
                && let Some(key) = o.get(inner).and_then(store::key_text)
            {
                o.insert("self".into(), json!(link(ctx, &format!("{path}/{key}"))));
            }
        }
        out.entry("balance").or_insert(json!(0.0));
        out.entry("dueAmount").or_insert(json!(0.0));
        out.insert("lastUpdated".into(), json!(utc_seconds(times.updated)));
        out.insert(
            "contacts".into(),
            json!(link(ctx, &format!("customers/{number}/contacts"))),
        );
        out.insert(
            "self".into(),
            json!(link(ctx, &format!("customers/{number}"))),
        );
        Ok(Value::Object(out))
    }
}
