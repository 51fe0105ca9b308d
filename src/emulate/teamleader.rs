//! Teamleader Focus: RPC-style `POST /{resource}.{action}` for contacts,
//! companies and products (list, info, add, update, delete), page-number
//! lists that end on a short page, an OAuth2 token endpoint with rotating
//! refresh tokens, and 200 requests per minute answered with `Retry-After`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::fake::{self, Drift, Region};
use super::store::{self, Ctx, Spec, Times, Window};
use super::{
    Access, Auth, Limit, Req, Resp, Sys, System, Tx, Vendor, keep_fields, merge_top, parse_time,
    utc_offset, utc_zone,
};

pub(super) struct Teamleader;

const LIMIT: usize = 200;

static SPECS: [Spec; 3] = [
    Spec {
        name: "contacts",
        pk: "id",
        keys: &["id"],
        precision: 1000,
        generate: contact,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("contacts", value),
            _ => None,
        },
    },
    Spec {
        name: "companies",
        pk: "id",
        keys: &["id"],
        precision: 1000,
        generate: company,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("companies", value),
            _ => None,
        },
    },
    Spec {
        name: "products",
        pk: "id",
        keys: &["id"],
        precision: 1000,
        generate: product,
        seeded_slot: |ctx, field, value| match field {
            "id" => ctx.uuid_slot("products", value),
            _ => None,
        },
    },
];

const POSITIONS: [&str; 4] = ["CEO", "Office manager", "Buyer", "Accountant"];

/// The singular type name `*.add` answers with.
fn kind(entity: &str) -> &'static str {
    match entity {
        "contacts" => "contact",
        "companies" => "company",
        _ => "product",
    }
}

fn language(country: &str) -> &'static str {
    match country {
        "BE" | "NL" => "nl",
        "IT" => "it",
        "ES" => "es",
        "SE" => "sv",
        "NO" => "nb",
        _ => "en",
    }
}

fn web_url(entity: &str, id: &str) -> String {
    let page = match entity {
        "contacts" => "contact_detail.php",
        "companies" => "company_detail.php",
        _ => "product_detail.php",
    };
    format!("https://focus.teamleader.eu/{page}?id={id}")
}

fn address(a: &fake::Address) -> Value {
    json!({
        "line_1": a.line(),
        "postal_code": a.postal,
        "city": a.city,
        "country": a.country.code,
        "area_level_two": null,
    })
}

fn contact(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("contacts", slot);
    let p = fake::person(ctx.seed, Region::Eu, slot);
    let mut drift = Drift::new(ctx.seed, "teamleader", slot);
    let mut rng = ctx.rng("contacts/extra", slot);
    let telephones: Vec<Value> = drift
        .phone(&p.phone)
        .map(|n| json!({ "type": "mobile", "number": n }))
        .into_iter()
        .collect();
    let companies: Vec<Value> = if fake::is_company(ctx.seed, Region::Eu, slot) {
        vec![json!({
            "position": POSITIONS[rng.below(4) as usize],
            "decision_maker": rng.chance(0.5),
            "company": { "type": "company", "id": ctx.uuid("companies", slot) },
        })]
    } else {
        Vec::new()
    };
    let tags: &[&str] = match rng.below(3) {
        0 => &["newsletter"],
        1 => &["lead"],
        _ => &[],
    };
    json!({
        "id": id,
        "first_name": p.first,
        "last_name": p.last,
        "salutation": null,
        "emails": [{ "type": "primary", "email": drift.email(&p.email) }],
        "telephones": telephones,
        "website": null,
        "primary_address": address(&p.address),
        "gender": if p.female { "female" } else { "male" },
        "birthdate": null,
        "iban": null,
        "bic": null,
        "national_identification_number": null,
        "language": language(p.address.country.code),
        "invoicing_preferences": { "electronic_invoicing_address": null },
        "tags": tags,
        "custom_fields": [{
            "definition": { "type": "customFieldDefinition", "id": ctx.uuid("customfield", 0) },
            "value": (slot + 1).to_string(),
        }],
        "marketing_mails_consent": rng.chance(0.4),
        "companies": companies,
        "added_at": utc_offset(times.created),
        "updated_at": utc_offset(times.updated),
        "web_url": web_url("contacts", &id),
    })
}

fn company(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("companies", slot);
    let c = fake::company(ctx.seed, Region::Eu, slot);
    let mut drift = Drift::new(ctx.seed, "teamleader/companies", slot);
    let telephones: Vec<Value> = drift
        .phone(&c.phone)
        .map(|n| json!({ "type": "phone", "number": n }))
        .into_iter()
        .collect();
    json!({
        "id": id,
        "name": c.name,
        "business_type": null,
        "vat_number": c.tax_id,
        "national_identification_number": null,
        "emails": [{ "type": "primary", "email": drift.email(&c.email) }],
        "telephones": telephones,
        "website": format!("https://www.{}", c.domain),
        "primary_address": address(&c.address),
        "iban": null,
        "bic": null,
        "language": language(c.address.country.code),
        "preferred_currency": c.address.country.currency,
        "invoicing_preferences": { "electronic_invoicing_address": null },
        "responsible_user": { "type": "user", "id": ctx.uuid("user", 0) },
        "added_at": utc_offset(times.created),
        "updated_at": utc_offset(times.updated),
        "web_url": web_url("companies", &id),
        "tags": [],
        "custom_fields": [],
    })
}

fn product(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let id = ctx.uuid("products", slot);
    let p = fake::product(ctx.seed, Region::Eu, slot);
    json!({
        "id": id,
        "name": p.name,
        "description": p.description,
        "code": p.code,
        "purchase_price": { "amount": (p.price * 6 / 10) as f64 / 100.0, "currency": "EUR" },
        "selling_price": { "amount": p.price as f64 / 100.0, "currency": "EUR" },
        "unit": null,
        "stock": { "amount": p.stock },
        "added_at": utc_offset(times.created),
        "updated_at": utc_offset(times.updated),
    })
}

fn error(status: u16, title: &str) -> Resp {
    Resp::json(
        status,
        json!({ "errors": [{ "title": title, "status": status }] }),
    )
}

fn list(tx: &Tx, body: &Value, t: usize) -> Resp {
    let page = body.get("page");
    let size = page
        .and_then(|p| p.get("size"))
        .and_then(Value::as_u64)
        .unwrap_or(20) as usize;
    let number = page
        .and_then(|p| p.get("number"))
        .and_then(Value::as_u64)
        .unwrap_or(1) as usize;
    if !(1..=100).contains(&size) || number < 1 {
        return error(
            400,
            "page.size must be between 1 and 100 and page.number at least 1",
        );
    }
    let filter = body.get("filter").cloned().unwrap_or(json!({}));
    let mut window = Window::default();
    if let Some(since) = filter.get("updated_since").and_then(Value::as_str) {
        let Some(t) = parse_time(since, utc_zone()) else {
            return error(400, "filter.updated_since must be an ISO 8601 date-time");
        };
        window.from = Some((t, true));
    }
    let desc = body
        .get("sort")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .is_some_and(|s| {
            s.get("field").and_then(Value::as_str) == Some("updated_at")
                && s.get("order").and_then(Value::as_str) == Some("desc")
        });
    let ids: Vec<String> = filter
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(store::key_text).collect())
        .unwrap_or_default();
    let email = filter
        .get("email")
        .and_then(|e| e.get("email"))
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let term = filter
        .get("term")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let table = &tx.sys.tables[t];
    let keep = |r: &Value| {
        let text = r.to_string().to_lowercase();
        (ids.is_empty()
            || r.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| ids.iter().any(|i| i == id)))
            && email.as_ref().is_none_or(|e| {
                r.get("emails").and_then(Value::as_array).is_some_and(|es| {
                    es.iter().any(|x| {
                        x.get("email")
                            .and_then(Value::as_str)
                            .is_some_and(|m| m.trim().to_lowercase() == *e)
                    })
                })
            })
            && term.as_ref().is_none_or(|t| text.contains(t.as_str()))
    };
    let filtered = !ids.is_empty() || email.is_some() || term.is_some();
    let fetch = |offset: usize, limit: usize| {
        if filtered {
            table.page_where(&window, offset, limit, &keep)
        } else {
            table.page(&window, offset, limit)
        }
    };
    let offset = (number - 1) * size;
    let page = if desc {
        let total = fetch(0, 0).total;
        let end = total.saturating_sub(offset);
        let start = end.saturating_sub(size);
        fetch(start, end - start)
    } else {
        fetch(offset, size)
    };
    let with_meta = body
        .get("includes")
        .and_then(Value::as_str)
        .is_some_and(|i| i.split(',').any(|x| x.trim() == "pagination"));
    let meta = json!({ "page": { "size": size, "number": number }, "matches": page.total });
    Resp::page(move || {
        let mut data = page.records();
        if desc {
            data.reverse();
        }
        let mut out = json!({ "data": data });
        if with_meta {
            out["meta"] = meta;
        }
        out
    })
}

fn find(tx: &Tx, t: usize, body: &Value) -> Result<usize, Resp> {
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        return Err(error(400, "id is required"));
    };
    tx.sys.tables[t].find_id(id).ok_or_else(|| {
        let entity = tx.sys.tables[t].name();
        let mut name = kind(entity).to_string();
        name[..1].make_ascii_uppercase();
        error(404, &format!("{name} not found"))
    })
}

fn add(tx: &mut Tx, body: Value, t: usize) -> Resp {
    let entity = tx.sys.tables[t].name();
    let required = if entity == "contacts" {
        "last_name"
    } else {
        "name"
    };
    if body
        .get(required)
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return error(422, &format!("The {required} field is required."));
    }
    match tx.create(t, body) {
        Ok(r) => Resp::json(
            201,
            json!({ "data": { "type": kind(entity), "id": r["id"] } }),
        ),
        Err(e) => error(400, &e),
    }
}

impl Vendor for Teamleader {
    fn system(&self) -> System {
        System::Teamleader
    }

    fn specs(&self) -> &'static [Spec] {
        &SPECS
    }

    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", store::secret(seed, "teamleader/client_id", 32)),
            (
                "client_secret",
                store::secret(seed, "teamleader/client_secret", 32),
            ),
        ]
    }

    fn oauth(&self) -> bool {
        true
    }

    fn authenticate(&self, auth: &Auth, req: &Req) -> Access {
        if req
            .route(&["oauth2", "access_token"])
            .is_some_and(|r| r.is_empty())
        {
            return Access::Public;
        }
        // Limits count per app, not per access token: a refresh starts no new window.
        match req.bearer() {
            Some(_) if auth.bearer_ok(req) => Access::Key(auth.secret("client_id").to_string()),
            Some(_) => Access::Denied(error(401, "Access token is invalid or expired")),
            None => Access::Denied(error(401, "Access token is missing")),
        }
    }

    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp {
        let path: Vec<&str> = req.path.iter().map(String::as_str).collect();
        if path == ["oauth2", "access_token"] {
            if req.method != "POST" {
                return error(405, "Method not allowed");
            }
            let (status, body) = tx.sys.auth.refresh(req);
            return Resp::json(status, body);
        }
        let [call] = path.as_slice() else {
            return error(404, "Not found");
        };
        if req.method != "POST" {
            return error(405, "Method not allowed");
        }
        let body = if req.body.is_empty() {
            json!({})
        } else {
            match req.json() {
                Some(b @ Value::Object(_)) => b,
                _ => return error(400, "The request body must be a JSON object"),
            }
        };
        if *call == "users.me" {
            return Resp::json(
                200,
                json!({ "data": {
                    "id": tx.ctx().uuid("user", 0),
                    "account": { "type": "account", "id": tx.ctx().uuid("account", 0) },
                    "first_name": "Demo",
                    "last_name": "Admin",
                    "email": "admin@recon-demo.eu",
                    "language": "en",
                    "time_zone": "Europe/Brussels",
                }}),
            );
        }
        let Some((resource, action)) = call.split_once('.') else {
            return error(404, "Not found");
        };
        let Some(t) = tx.table(resource) else {
            return error(404, "Not found");
        };
        match action {
            "list" => list(tx, &body, t),
            "info" => match find(tx, t, &body) {
                Ok(slot) => Resp::json(200, json!({ "data": tx.sys.tables[t].get(slot) })),
                Err(resp) => resp,
            },
            "add" => add(tx, body, t),
            "update" => match find(tx, t, &body) {
                Ok(slot) => {
                    let mut record = tx.sys.tables[t].get(slot).unwrap_or_default();
                    merge_top(&mut record, &body);
                    match tx.update(t, slot, record) {
                        Ok(_) => Resp::empty(204),
                        Err(e) => error(400, &e),
                    }
                }
                Err(resp) => resp,
            },
            "delete" => match find(tx, t, &body) {
                Ok(slot) => match tx.delete(t, slot) {
                    Ok(_) => Resp::empty(204),
                    Err(e) => error(400, &e),
                },
                Err(resp) => resp,
            },
            _ => error(404, "Not found"),
        }
    }

    fn server_error(&self) -> Resp {
        error(500, "Internal Server Error")
    }

    fn too_many(&self, wait: Duration, _parallel: bool) -> Resp {
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        error(429, "Too Many Requests")
            .header("Retry-After", seconds)
            .header("X-RateLimit-Limit", LIMIT)
            .header("X-RateLimit-Remaining", 0)
    }

    fn limit(&self) -> Limit {
        Limit {
            count: LIMIT,
            window: Duration::from_secs(60),
            parallel: None,
        }
    }

    fn limit_headers(&self, remaining: usize) -> Vec<(&'static str, String)> {
        vec![
            ("X-RateLimit-Limit", LIMIT.to_string()),
            ("X-RateLimit-Remaining", remaining.to_string()),
        ]
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
        let Value::Object(mut r) = record else {
            return Err("The record must be a JSON object".into());
        };
        match before {
            Some(b) => {
                let mut v = Value::Object(r);
                keep_fields(&mut v, b, &["id", "added_at", "web_url"]);
                r = match v {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
            }
            None => {
                r.remove("id");
                let id = sys.ctx.uuid(entity, slot);
                let mut head = Map::new();
                head.insert("id".into(), json!(id));
                head.extend(r);
                r = head;
                if entity != "products" {
                    for list in ["emails", "telephones", "tags", "custom_fields"] {
                        r.entry(list).or_insert(json!([]));
                    }
                    r.insert("web_url".into(), json!(web_url(entity, &id)));
                }
                r.insert("added_at".into(), json!(utc_offset(times.created)));
            }
        }
        r.insert("updated_at".into(), json!(utc_offset(times.updated)));
        Ok(Value::Object(r))
    }
}
