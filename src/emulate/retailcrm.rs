//! retailCRM API v5: customers, orders and products with page-number
//! pagination, the change log (`/customers/history`, `/orders/history`)
//! paged by `filter[sinceId]`, form-encoded writes carrying the record as
//! JSON in one field, batch uploads that answer 460 on partial failure, and
//! 10 requests per second per key.
//!
//! Seeded records link to the MoySklad records of the same slot the way a
//! typical integration does: a customer's `externalId` is the counterparty
//! id, an order's the customer order id, an offer's the product id.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::fake::{self, Drift, Region};
use super::store::{self, Ctx, Item, Spec, TimeField, Times, Window};
use super::{
    Access, Auth, Limit, Origin, Req, Resp, Sys, System, Tx, Vendor, keep_fields, merge_top,
    moscow, msk_seconds, parse_time,
};

pub(super) struct RetailCrm;

const BASE: &[&str] = &["api", "v5"];
const SITE: &str = "main-store";
/// Upload endpoints take at most this many records.
const UPLOAD_MAX: usize = 50;
const STATUSES: [&str; 5] = [
    "new",
    "availability-confirmed",
    "assembling",
    "send-to-delivery",
    "complete",
];

/// The MoySklad id of the same slot: seeded externalIds are these.
fn moysklad_id(ctx: &Ctx, entity: &str, slot: usize) -> String {
    store::uuid(ctx.seed, store::salt(&format!("moysklad/{entity}")), slot)
}

fn moysklad_slot(ctx: &Ctx, entity: &str, id: &str) -> Option<usize> {
    store::uuid_slot(ctx.seed, store::salt(&format!("moysklad/{entity}")), id)
}

fn int_slot(value: &str) -> Option<usize> {
    value.parse::<usize>().ok()?.checked_sub(1)
}

static SPECS: [Spec; 3] = [
    Spec {
        name: "customers",
        pk: "id",
        keys: &["id", "externalId"],
        precision: 1000,
        generate: customer,
        seeded_slot: |ctx, field, value| match field {
            "id" => int_slot(value),
            "externalId" => moysklad_slot(ctx, "counterparty", value),
            _ => None,
        },
    },
    Spec {
        name: "orders",
        pk: "id",
        keys: &["id", "externalId", "number"],
        precision: 1000,
        generate: order,
        seeded_slot: |ctx, field, value| match field {
            "id" => int_slot(value),
            "externalId" => moysklad_slot(ctx, "customerorder", value),
            "number" => value.strip_suffix('A').and_then(int_slot),
            _ => None,
        },
    },
    Spec {
        name: "products",
        pk: "id",
        keys: &["id", "externalId"],
        precision: 1000,
        generate: product,
        seeded_slot: |ctx, field, value| match field {
            "id" => int_slot(value),
            "externalId" => moysklad_slot(ctx, "product", value),
            _ => None,
        },
    },
];

fn compact(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    v
}

fn customer(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let p = fake::person(ctx.seed, Region::Ru, slot);
    let mut drift = Drift::new(ctx.seed, "retailcrm", slot);
    let mut rng = ctx.rng("customers/extra", slot);
    let external = (!drift.missing()).then(|| moysklad_id(ctx, "counterparty", slot));
    let orders = rng.below(12);
    let total = (orders * (500 + rng.below(20_000))) as f64;
    let phones: Vec<Value> = drift
        .phone(&p.phone)
        .map(|n| json!({ "number": n }))
        .into_iter()
        .collect();
    compact(json!({
        "type": "customer",
        "id": slot + 1,
        "externalId": external,
        "isContact": false,
        "createdAt": msk_seconds(times.created),
        "managerId": 1 + rng.below(5),
        "vip": rng.chance(0.05),
        "bad": false,
        "site": SITE,
        "contragent": { "contragentType": "individual" },
        "tags": [],
        "customFields": {},
        "personalDiscount": 0,
        "marginSumm": 0,
        "totalSumm": total,
        "averageSumm": if orders > 0 { (total / orders as f64).round() } else { 0.0 },
        "ordersCount": orders,
        "address": {
            "countryIso": "RU",
            "index": p.address.postal,
            "city": p.address.city,
            "text": p.address.line(),
        },
        "segments": [],
        "firstName": p.first,
        "lastName": p.last,
        "patronymic": p.patronymic,
        "sex": if p.female { "female" } else { "male" },
        "email": drift.email(&p.email),
        "phones": phones,
    }))
}

fn order(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let o = fake::order(ctx.seed, Region::Ru, slot, ctx.n);
    let buyer = fake::person(ctx.seed, Region::Ru, o.customer);
    let mut drift = Drift::new(ctx.seed, "retailcrm/orders", slot);
    let items: Vec<Value> = o
        .lines
        .iter()
        .enumerate()
        .map(|(i, &(p, qty))| {
            let product = fake::product(ctx.seed, Region::Ru, p);
            json!({
                "id": slot * 8 + i + 1,
                "initialPrice": product.price as f64 / 100.0,
                "discountTotal": 0,
                "vatRate": "none",
                "createdAt": msk_seconds(times.created),
                "quantity": qty,
                "status": "new",
                "offer": {
                    "id": p + 1,
                    "externalId": moysklad_id(ctx, "product", p),
                    "name": product.name,
                    "article": product.article,
                },
                "purchasePrice": 0,
            })
        })
        .collect();
    let total = items_total(&items);
    let status = STATUSES[o.stage];
    compact(json!({
        "slug": slot + 1,
        "id": slot + 1,
        "number": format!("{}A", slot + 1),
        "externalId": (!drift.missing()).then(|| moysklad_id(ctx, "customerorder", slot)),
        "orderType": "eshop-individual",
        "orderMethod": "shopping-cart",
        "privilegeType": "none",
        "countryIso": "RU",
        "createdAt": msk_seconds(times.created),
        "statusUpdatedAt": msk_seconds(times.updated),
        "summ": total,
        "totalSumm": total,
        "prepaySum": if o.stage >= 2 { total } else { 0.0 },
        "purchaseSumm": 0,
        "lastName": buyer.last,
        "firstName": buyer.first,
        "patronymic": buyer.patronymic,
        "phone": drift.phone(&buyer.phone),
        "email": drift.email(&buyer.email),
        "call": false,
        "expired": false,
        "customer": {
            "type": "customer",
            "id": o.customer + 1,
            "externalId": moysklad_id(ctx, "counterparty", o.customer),
            "site": SITE,
        },
        "delivery": {
            "cost": 0,
            "netCost": 0,
            "address": {
                "countryIso": "RU",
                "index": buyer.address.postal,
                "city": buyer.address.city,
                "text": buyer.address.line(),
            },
        },
        "site": SITE,
        "status": status,
        "items": items,
        "fromApi": false,
        "shipped": o.stage >= 3,
        "customFields": {},
    }))
}

fn items_total(items: &[Value]) -> f64 {
    let sum: f64 = items
        .iter()
        .map(|i| {
            let f = |k: &str| i.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            f("initialPrice") * f("quantity") - f("discountTotal")
        })
        .sum();
    (sum * 100.0).round() / 100.0
}

fn product(ctx: &Ctx, slot: usize, times: Times) -> Value {
    let p = fake::product(ctx.seed, Region::Ru, slot);
    let price = p.price as f64 / 100.0;
    let external = moysklad_id(ctx, "product", slot);
    json!({
        "minPrice": price,
        "maxPrice": price,
        "id": slot + 1,
        "article": p.article,
        "name": p.name,
        "description": p.description,
        "popular": false,
        "stock": p.stock > 0,
        "novelty": false,
        "recommended": false,
        "active": true,
        "quantity": p.stock,
        "markable": false,
        "groups": [],
        "externalId": external,
        "createdAt": msk_seconds(times.created),
        "updatedAt": msk_seconds(times.updated),
        "offers": [{
            "name": p.name,
            "price": price,
            "images": [],
            "id": slot + 1,
            "externalId": external,
            "article": p.article,
            "prices": [{ "priceType": "base", "price": price, "ordering": 990 }],
            "purchasePrice": (price * 0.6).round(),
            "quantity": p.stock,
            "barcode": p.ean13,
            "properties": {},
            "unit": { "code": "pc", "name": "Штука", "sym": "шт." },
        }],
    })
}

fn error(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({ "success": false, "errorMsg": message }))
}

fn field_errors(status: u16, message: &str, errors: Value) -> Resp {
    Resp::json(
        status,
        json!({ "success": false, "errorMsg": message, "errors": errors }),
    )
}

fn page_params(req: &Req) -> Result<(usize, usize), Resp> {
    let limit = match req.query("limit").map(str::parse::<usize>) {
        None => 20,
        Some(Ok(l @ (20 | 50 | 100))) => l,
        _ => {
            return Err(field_errors(
                400,
                "Errors in the input parameters",
                json!({ "limit": "This value should be equal to 20, 50 or 100." }),
            ));
        }
    };
    let page = match req.query("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => {
            return Err(field_errors(
                400,
                "Errors in the input parameters",
                json!({ "page": "This value should be greater than or equal to 1." }),
            ));
        }
    };
    Ok((limit, page))
}

fn pagination(limit: usize, page: usize, total: usize) -> Value {
    json!({
        "limit": limit,
        "totalCount": total,
        "currentPage": page,
        "totalPageCount": total.div_ceil(limit),
    })
}

/// `filter[ids][]`, `filter[ids][0]`, ...: every value of a list filter.
fn list_filter<'a>(req: &'a Req, name: &str) -> Vec<&'a str> {
    let prefix = format!("filter[{name}][");
    req.query
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn list(tx: &Tx, req: &Req, t: usize, key: &'static str) -> Resp {
    let (limit, page) = match page_params(req) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let mut window = Window {
        field: TimeField::Created,
        ..Window::default()
    };
    for (param, end) in [
        ("filter[dateFrom]", false),
        ("filter[createdAtFrom]", false),
        ("filter[dateTo]", true),
        ("filter[createdAtTo]", true),
    ] {
        let Some(text) = req.query(param) else {
            continue;
        };
        let Some(t) = parse_time(text, moscow()) else {
            return field_errors(
                400,
                "Errors in the input parameters",
                json!({ param: "This value is not a valid date." }),
            );
        };
        if end {
            // A bare date ends at the end of that day.
            let t = if text.trim().len() == 10 {
                t + 86_399_000
            } else {
                t
            };
            window.to = Some((t, true));
        } else {
            window.from = Some((t, true));
        }
    }
    let ids: Vec<String> = list_filter(req, "ids")
        .into_iter()
        .map(str::to_string)
        .collect();
    let externals: Vec<String> = list_filter(req, "externalIds")
        .into_iter()
        .map(str::to_string)
        .collect();
    let email = req.query("filter[email]").map(str::to_lowercase);
    let name = req.query("filter[name]").map(str::to_lowercase);
    let table = &tx.sys.tables[t];
    let offset = (page - 1) * limit;
    let page_of = if ids.is_empty() && externals.is_empty() && email.is_none() && name.is_none() {
        table.page(&window, offset, limit)
    } else {
        let text = |r: &Value, k: &str| r.get(k).and_then(store::key_text).unwrap_or_default();
        table.page_where(&window, offset, limit, &|r| {
            (ids.is_empty() || ids.contains(&text(r, "id")))
                && (externals.is_empty() || externals.contains(&text(r, "externalId")))
                && email
                    .as_ref()
                    .is_none_or(|e| text(r, "email").trim().to_lowercase().contains(e))
                && name
                    .as_ref()
                    .is_none_or(|n| text(r, "name").to_lowercase().contains(n))
        })
    };
    let pagination = pagination(limit, page, page_of.total);
    Resp::page(move || json!({ "success": true, "pagination": pagination, key: page_of.records() }))
}

/// The record key a change-log row and a single read use.
fn singular(entity: &str) -> &'static str {
    match entity {
        "orders" => "order",
        "products" => "product",
        _ => "customer",
    }
}

/// The change log of customers or orders. Rows 1..=n are the creations of
/// the seeded records (generated on demand); later rows are stored as
/// writes happen.
fn history(tx: &Tx, req: &Req, t: usize) -> Resp {
    let limit = match req.query("limit").map(str::parse::<usize>) {
        None => 20,
        Some(Ok(l @ (20 | 50 | 100))) => l,
        _ => {
            return field_errors(
                400,
                "Errors in the input parameters",
                json!({ "limit": "This value should be equal to 20, 50 or 100." }),
            );
        }
    };
    let page = match req.query("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => return error(400, "Errors in the input parameters"),
    };
    let since = match req.query("filter[sinceId]").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            return field_errors(
                400,
                "Errors in the input parameters",
                json!({ "sinceId": "This value should be a positive integer." }),
            );
        }
    };
    let table = &tx.sys.tables[t];
    let n = table.ctx.n;
    let log = tx
        .sys
        .log
        .get(table.name())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let total = (n + log.len()).saturating_sub(since);
    let offset = (page - 1) * limit;
    let mut rows = Vec::new();
    for i in offset..(offset + limit).min(total) {
        let id = since + 1 + i;
        if id <= n {
            rows.push(Item::Seeded(id - 1));
        } else {
            rows.push(Item::Stored(log[id - n - 1].clone()));
        }
    }
    let (spec, ctx) = (table.spec, table.ctx.clone());
    let key = singular(table.name());
    let pagination = pagination(limit, page, total);
    let generated = msk_seconds(tx.now());
    Resp::page(move || {
        let history: Vec<Value> = rows
            .into_iter()
            .map(|item| match item {
                Item::Seeded(slot) => {
                    let times = ctx.seeded_times(spec.name, slot, spec.precision);
                    json!({
                        "id": slot + 1,
                        "createdAt": msk_seconds(times.created),
                        "created": true,
                        "source": "user",
                        "field": "id",
                        "oldValue": null,
                        "newValue": slot + 1,
                        "user": { "id": 1 },
                        "apiKey": { "current": false },
                        key: (spec.generate)(&ctx, slot, times),
                    })
                }
                Item::Stored(row) => row,
            })
            .collect();
        json!({
            "success": true,
            "generatedAt": generated,
            "history": history,
            "pagination": pagination,
        })
    })
}

/// camelCase to the snake_case retailCRM's change log names fields with.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Changed fields between two versions: nested objects by subfield
/// (`address.city`), everything else whole.
fn changes(before: &Value, after: &Value) -> Vec<(String, Value, Value)> {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.dedup();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for k in keys {
        if !seen.insert(k) || k == "statusUpdatedAt" || k == "updatedAt" {
            continue;
        }
        let (old, new) = (
            b.get(k).cloned().unwrap_or(Value::Null),
            a.get(k).cloned().unwrap_or(Value::Null),
        );
        if old == new {
            continue;
        }
        match (&old, &new) {
            (Value::Object(_), Value::Object(_)) => {
                for (sub, o, n) in changes(&old, &new) {
                    out.push((format!("{}.{sub}", snake(k)), o, n));
                }
            }
            _ => out.push((snake(k), old, new)),
        }
    }
    out
}

fn record_param(req: &Req, name: &str) -> Result<Value, Resp> {
    let Some(text) = req.param(name) else {
        return Err(error(400, &format!("Parameter '{name}' is missing")));
    };
    serde_json::from_str(&text).map_err(|_| {
        field_errors(
            400,
            "Errors in the entity format",
            json!({ name: "This value is not valid JSON." }),
        )
    })
}

/// Why a record cannot be created, as retailCRM's errors map says it.
fn conflict(tx: &Tx, t: usize, record: &Value) -> Option<String> {
    if !record.is_object() {
        return Some("The record must be a JSON object.".into());
    }
    let table = &tx.sys.tables[t];
    let what = if table.name() == "orders" {
        "Order"
    } else {
        "Customer"
    };
    if let Some(ext) = record.get("externalId").and_then(store::key_text)
        && table.find("externalId", &ext).is_some()
    {
        return Some(format!("{what} with externalId={ext} already exists."));
    }
    if table.name() == "orders"
        && let Some(c) = record.get("customer")
    {
        let customers = tx.table("customers").map(|c| &tx.sys.tables[c])?;
        let found = match (
            c.get("id").and_then(store::key_text),
            c.get("externalId").and_then(store::key_text),
        ) {
            (Some(id), _) => customers.find_id(&id).is_some(),
            (None, Some(ext)) => customers.find("externalId", &ext).is_some(),
            (None, None) => true,
        };
        if !found {
            return Some("Customer not found.".into());
        }
    }
    None
}

fn create(tx: &mut Tx, req: &Req, t: usize) -> Resp {
    let key = singular(tx.sys.tables[t].name());
    let mut record = match record_param(req, key) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Some(message) = conflict(tx, t, &record) {
        return field_errors(400, "Errors in the entity format", json!({ key: message }));
    }
    if let Some(site) = req.param("site") {
        record["site"] = json!(site);
    }
    match tx.create(t, record) {
        Ok(r) => {
            let mut body = json!({ "success": true, "id": r["id"] });
            if key == "order" {
                body["order"] = r;
            }
            Resp::json(201, body)
        }
        Err(e) => error(400, &e),
    }
}

fn find_by(tx: &Tx, t: usize, id: &str, by: Option<&str>) -> Option<usize> {
    let table = &tx.sys.tables[t];
    match by.unwrap_or("externalId") {
        "id" => table.find_id(id),
        _ => table.find("externalId", id),
    }
}

fn edit(tx: &mut Tx, req: &Req, t: usize, id: &str) -> Resp {
    let key = singular(tx.sys.tables[t].name());
    let by = req.param("by");
    if by
        .as_deref()
        .is_some_and(|b| b != "id" && b != "externalId")
    {
        return field_errors(
            400,
            "Errors in the input parameters",
            json!({ "by": "This value should be id or externalId." }),
        );
    }
    let Some(slot) = find_by(tx, t, id, by.as_deref()) else {
        return error(404, "Not found");
    };
    let patch = match record_param(req, key) {
        Ok(p @ Value::Object(_)) => p,
        Ok(_) => return error(400, "Errors in the entity format"),
        Err(resp) => return resp,
    };
    let mut record = tx.sys.tables[t].get(slot).unwrap_or_default();
    merge_top(&mut record, &patch);
    match tx.update(t, slot, record) {
        Ok(r) => Resp::json(200, json!({ "success": true, "id": r["id"] })),
        Err(e) => error(400, &e),
    }
}

fn upload(tx: &mut Tx, req: &Req, t: usize) -> Resp {
    let entity = tx.sys.tables[t].name();
    let (uploaded_key, failed_key, label) = if entity == "orders" {
        ("uploadedOrders", "failedOrders", "Orders")
    } else {
        ("uploadedCustomers", "failedCustomers", "Customers")
    };
    let records = match record_param(req, entity) {
        Ok(Value::Array(a)) => a,
        Ok(_) => return error(400, &format!("Parameter '{entity}' must be an array")),
        Err(resp) => return resp,
    };
    if records.len() > UPLOAD_MAX {
        return error(
            400,
            &format!("{label}: no more than {UPLOAD_MAX} records per request"),
        );
    }
    let site = req.param("site");
    let (mut uploaded, mut failed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for mut record in records {
        if let Some(message) = conflict(tx, t, &record) {
            failed.push(json!({ "externalId": record.get("externalId") }));
            errors.push(json!(message));
            continue;
        }
        if let Some(site) = &site {
            record["site"] = json!(site);
        }
        match tx.create(t, record.clone()) {
            Ok(r) => uploaded.push(json!({ "id": r["id"], "externalId": r.get("externalId") })),
            Err(e) => {
                failed.push(json!({ "externalId": record.get("externalId") }));
                errors.push(json!(e));
            }
        }
    }
    if failed.is_empty() {
        Resp::json(201, json!({ "success": true, uploaded_key: uploaded }))
    } else {
        Resp::json(
            460,
            json!({
                "success": false,
                "errorMsg": format!("{label} are loaded with errors"),
                "errors": errors,
                uploaded_key: uploaded,
                failed_key: failed,
            }),
        )
    }
}

impl Vendor for RetailCrm {
    fn system(&self) -> System {
        System::RetailCrm
    }

    fn specs(&self) -> &'static [Spec] {
        &SPECS
    }

    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)> {
        vec![("token", store::secret(seed, "retailcrm/api_key", 32))]
    }

    fn authenticate(&self, auth: &Auth, req: &Req) -> Access {
        let given = req.header("x-api-key").or_else(|| req.query("apiKey"));
        match given {
            None | Some("") => Access::Denied(error(401, "\"apiKey\" is missing.")),
            Some(k) if k == auth.secret("token") => Access::Key(k.to_string()),
            Some(_) => Access::Denied(error(401, "Wrong \"apiKey\" value.")),
        }
    }

    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp {
        let Some(route) = req.route(BASE) else {
            return error(404, "API method not found");
        };
        let method = req.method.as_str();
        let served = |name: &str| matches!(name, "customers" | "orders");
        match (method, route.as_slice()) {
            ("GET", ["credentials"]) => Resp::json(
                200,
                json!({
                    "success": true,
                    "credentials": ["/api/v5/customers", "/api/v5/orders", "/api/v5/store/products",
                        "/api/v5/customers/history", "/api/v5/orders/history"],
                    "siteAccess": "access_full",
                    "sitesAvailable": [SITE],
                }),
            ),
            ("GET", ["store", "products"]) => match tx.table("products") {
                Some(t) => list(tx, req, t, "products"),
                None => error(404, "API method not found"),
            },
            ("GET", [e]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                list(
                    tx,
                    req,
                    t,
                    if *e == "orders" {
                        "orders"
                    } else {
                        "customers"
                    },
                )
            }
            ("GET", [e, "history"]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                history(tx, req, t)
            }
            ("POST", [e, "create"]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                create(tx, req, t)
            }
            ("POST", [e, "upload"]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                upload(tx, req, t)
            }
            ("POST", [e, id, "edit"]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                edit(tx, req, t, id)
            }
            ("GET", [e, id]) if served(e) => {
                let t = tx.table(e).expect("served entity");
                match find_by(tx, t, id, req.query("by")) {
                    Some(slot) => {
                        let record = tx.sys.tables[t].get(slot).unwrap_or_default();
                        Resp::json(200, json!({ "success": true, singular(e): record }))
                    }
                    None => error(404, "Not found"),
                }
            }
            _ => error(404, "API method not found"),
        }
    }

    fn server_error(&self) -> Resp {
        error(500, "Internal Server Error")
    }

    fn too_many(&self, _wait: Duration, _parallel: bool) -> Resp {
        error(429, "Too Many Requests")
    }

    fn limit(&self) -> Limit {
        Limit {
            count: 10,
            window: Duration::from_secs(1),
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
        let entity = SPECS[t].name;
        let Value::Object(mut r) = record else {
            return Err("The record must be a JSON object.".into());
        };
        let now = msk_seconds(times.updated);
        match before {
            Some(b) => {
                let mut v = Value::Object(r);
                keep_fields(&mut v, b, &["id", "createdAt", "type", "slug"]);
                r = match v {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                if entity == "orders" && r.get("status") != b.get("status") {
                    r.insert("statusUpdatedAt".into(), json!(now));
                }
            }
            None => {
                let mut head = Map::new();
                if entity == "customers" {
                    head.insert("type".into(), json!("customer"));
                }
                if entity == "orders" {
                    head.insert("slug".into(), json!(slot + 1));
                }
                head.insert("id".into(), json!(slot + 1));
                r.remove("id");
                head.extend(r);
                r = head;
                r.entry("createdAt")
                    .or_insert_with(|| json!(msk_seconds(times.created)));
                r.entry("site").or_insert(json!(SITE));
                r.entry("customFields").or_insert(json!({}));
                match entity {
                    "customers" => {
                        r.entry("isContact").or_insert(json!(false));
                        r.entry("vip").or_insert(json!(false));
                        r.entry("bad").or_insert(json!(false));
                        r.entry("contragent")
                            .or_insert(json!({ "contragentType": "individual" }));
                        r.entry("tags").or_insert(json!([]));
                    }
                    "orders" => {
                        r.entry("number")
                            .or_insert_with(|| json!(format!("{}A", slot + 1)));
                        r.entry("status").or_insert(json!("new"));
                        r.entry("statusUpdatedAt").or_insert(json!(now));
                        r.entry("items").or_insert(json!([]));
                        r.entry("orderType").or_insert(json!("eshop-individual"));
                    }
                    _ => {}
                }
            }
        }
        if entity == "orders" {
            // Link the buyer both ways, as retailCRM resolves it on save.
            if let Some(c) = r.get("customer").cloned()
                && let Some(ct) = sys.table("customers")
            {
                let customers = &sys.tables[ct];
                let slot = c
                    .get("id")
                    .and_then(store::key_text)
                    .and_then(|id| customers.find_id(&id))
                    .or_else(|| {
                        c.get("externalId")
                            .and_then(store::key_text)
                            .and_then(|e| customers.find("externalId", &e))
                    });
                if let Some(found) = slot.and_then(|s| customers.get(s)) {
                    r.insert(
                        "customer".into(),
                        compact(json!({
                            "type": "customer",
                            "id": found.get("id"),
                            "externalId": found.get("externalId"),
                            "site": found.get("site"),
                        })),
                    );
                }
            }
            let items = r
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = items_total(&items);
            r.insert("summ".into(), json!(total));
            r.insert("totalSumm".into(), json!(total));
        }
        if entity == "products" {
            r.insert("updatedAt".into(), json!(now));
        }
        Ok(Value::Object(r))
    }

    fn after_write(
        &self,
        tx: &mut Tx,
        t: usize,
        before: Option<&Value>,
        after: Option<&Value>,
        now: i64,
    ) {
        let entity = tx.sys.tables[t].name();
        if entity == "products" {
            return;
        }
        let key = singular(entity);
        let (source, current) = match tx.origin {
            Origin::Api => ("api", true),
            Origin::Admin => ("user", false),
        };
        let n = tx.sys.ctx.n;
        let log = tx.sys.log.entry(entity).or_default();
        let mut push = |mut row: Value, record: &Value| {
            row["id"] = json!(n + log.len() + 1);
            row["createdAt"] = json!(msk_seconds(now));
            row["source"] = json!(source);
            if !current {
                row["user"] = json!({ "id": 1 });
            }
            row["apiKey"] = json!({ "current": current });
            row[key] = record.clone();
            // Keep the documented key order: id first.
            let mut ordered = Map::new();
            for k in [
                "id",
                "createdAt",
                "created",
                "deleted",
                "source",
                "user",
                "field",
                "oldValue",
                "newValue",
                "apiKey",
                key,
            ] {
                if let Some(v) = row.get(k) {
                    ordered.insert(k.into(), v.clone());
                }
            }
            log.push(Value::Object(ordered));
        };
        match (before, after) {
            (None, Some(a)) => push(
                json!({ "created": true, "field": "id", "oldValue": null, "newValue": a["id"] }),
                a,
            ),
            (Some(b), None) => push(
                json!({ "deleted": true, "field": "id", "oldValue": b["id"], "newValue": null }),
                b,
            ),
            (Some(b), Some(a)) => {
                for (field, old, new) in changes(b, a) {
                    push(
                        json!({ "field": field, "oldValue": old, "newValue": new }),
                        a,
                    );
                }
            }
            (None, None) => {}
        }
    }
}
