//! The emulator over loopback HTTP: each system's pagination, auth, writes,
//! change log, rate limits, injected faults and saved state.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use recon::emulate::{Config, Emulator, Faults, System};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

fn client() -> Client {
    // reqwest is built without a default TLS provider; nothing here uses TLS,
    // but building a client needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn config(records: usize) -> Config {
    Config {
        records,
        rate_limits: false,
        ..Config::default()
    }
}

async fn start(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

fn cred(em: &Emulator, system: System, name: &str) -> String {
    em.credentials(system)
        .into_iter()
        .find(|(k, _)| *k == name)
        .unwrap_or_else(|| panic!("{system} has no credential {name}"))
        .1
}

/// A request to `system` at `path` under its base URL, with its credentials.
fn call(c: &Client, em: &Emulator, system: System, method: &str, path: &str) -> RequestBuilder {
    let url = format!("{}{path}", em.base_url(system));
    let req = c.request(method.parse().unwrap(), url);
    match system {
        System::MoySklad => req.bearer_auth(cred(em, system, "token")),
        System::RetailCrm => req.header("X-API-KEY", cred(em, system, "token")),
        System::Reviso => req
            .header("X-AppSecretToken", cred(em, system, "app_secret"))
            .header("X-AgreementGrantToken", cred(em, system, "agreement_grant")),
        System::Teamleader | System::EAccounting => {
            req.bearer_auth(cred(em, system, "access_token"))
        }
    }
}

async fn json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"));
    (status, body)
}

fn id_of(system: System, record: &Value) -> String {
    let key = match system {
        System::Reviso => "customerNumber",
        System::EAccounting => "Id",
        _ => "id",
    };
    match &record[key] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Every record of an entity, read page by page the way the vendor pages.
async fn read_all(c: &Client, em: &Emulator, system: System, entity: &str) -> Vec<Value> {
    let mut out = Vec::new();
    match system {
        System::MoySklad => {
            let mut url = format!("{}/entity/{entity}?limit=7", em.base_url(system));
            for _ in 0..100 {
                let resp = c
                    .get(&url)
                    .bearer_auth(cred(em, system, "token"))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = json(resp).await;
                assert_eq!(status, 200, "{body}");
                out.extend(body["rows"].as_array().unwrap().iter().cloned());
                match body["meta"]["nextHref"].as_str() {
                    Some(next) => url = next.to_string(),
                    None => return out,
                }
            }
        }
        System::RetailCrm => {
            let path = if entity == "products" {
                "/store/products".to_string()
            } else {
                format!("/{entity}")
            };
            for page in 1..100 {
                let resp = call(c, em, system, "GET", &path)
                    .query(&[("limit", "20"), ("page", &page.to_string())])
                    .send()
                    .await
                    .unwrap();
                let (status, body) = json(resp).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["success"], true);
                out.extend(body[entity].as_array().unwrap().iter().cloned());
                if page >= body["pagination"]["totalPageCount"].as_u64().unwrap() {
                    return out;
                }
            }
        }
        System::Teamleader => {
            for number in 1..100 {
                let resp = call(c, em, system, "POST", &format!("/{entity}.list"))
                    .json(&json!({
                        "page": { "size": 10, "number": number },
                        "sort": [{ "field": "updated_at", "order": "asc" }],
                    }))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = json(resp).await;
                assert_eq!(status, 200, "{body}");
                let data = body["data"].as_array().unwrap();
                out.extend(data.iter().cloned());
                if data.len() < 10 {
                    return out;
                }
            }
        }
        System::Reviso => {
            let mut url = format!("{}/{entity}?skippages=0&pagesize=10", em.base_url(system));
            for _ in 0..100 {
                let resp = c
                    .get(&url)
                    .header("X-AppSecretToken", cred(em, system, "app_secret"))
                    .header("X-AgreementGrantToken", cred(em, system, "agreement_grant"))
                    .send()
                    .await
                    .unwrap();
                let (status, body) = json(resp).await;
                assert_eq!(status, 200, "{body}");
                out.extend(body["collection"].as_array().unwrap().iter().cloned());
                match body["pagination"]["nextPage"].as_str() {
                    Some(next) => url = next.to_string(),
                    None => return out,
                }
            }
        }
        System::EAccounting => {
            for page in 1..100 {
                let resp = call(c, em, system, "GET", &format!("/{entity}"))
                    .query(&[("$page", page.to_string()), ("$pagesize", "10".to_string())])
                    .send()
                    .await
                    .unwrap();
                let (status, body) = json(resp).await;
                assert_eq!(status, 200, "{body}");
                out.extend(body["Data"].as_array().unwrap().iter().cloned());
                if page >= body["Meta"]["TotalNumberOfPages"].as_u64().unwrap() {
                    return out;
                }
            }
        }
    }
    panic!("{system}/{entity}: pagination did not end");
}

#[tokio::test]
async fn every_list_reaches_every_record_exactly_once() {
    let em = start(config(23)).await;
    let c = client();
    for system in System::ALL {
        for entity in system.entities() {
            let listed = read_all(&c, &em, system, entity).await;
            let ids: Vec<String> = listed.iter().map(|r| id_of(system, r)).collect();
            let unique: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(ids.len(), 23, "{system}/{entity}");
            assert_eq!(unique.len(), 23, "{system}/{entity}: duplicates");
            let stored: BTreeSet<String> = em
                .records(system, entity)
                .iter()
                .map(|r| id_of(system, r))
                .collect();
            assert_eq!(
                unique.into_iter().cloned().collect::<BTreeSet<_>>(),
                stored,
                "{system}/{entity}"
            );
        }
    }
    em.shutdown().await;
}

#[tokio::test]
async fn records_are_the_same_for_a_seed_and_differ_across_seeds() {
    let a = start(config(5)).await;
    let b = start(config(5)).await;
    let other = start(Config {
        seed: 7,
        ..config(5)
    })
    .await;
    for system in System::ALL {
        for entity in system.entities() {
            let text = |em: &Emulator| {
                serde_json::to_string(&em.records(system, entity))
                    .unwrap()
                    .replace(em.root(), "ROOT")
            };
            assert_eq!(text(&a), text(&b), "{system}/{entity}");
            assert_ne!(text(&a), text(&other), "{system}/{entity}");
        }
    }
    let counterparty = &a.records(System::MoySklad, "counterparty")[0];
    let updated = counterparty["updated"].as_str().unwrap();
    assert_eq!(updated.len(), "2024-01-01 10:00:00.000".len(), "{updated}");
    assert!(
        counterparty["meta"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&a.base_url(System::MoySklad))
    );
}

#[tokio::test]
async fn wrong_credentials_get_each_vendors_401() {
    let em = start(config(3)).await;
    let c = client();
    let base = |s| em.base_url(s);
    let cases = [
        (
            System::MoySklad,
            c.get(format!("{}/entity/counterparty", base(System::MoySklad)))
                .bearer_auth("nope"),
        ),
        (
            System::RetailCrm,
            c.get(format!("{}/customers", base(System::RetailCrm)))
                .header("X-API-KEY", "nope"),
        ),
        (
            System::Teamleader,
            c.post(format!("{}/contacts.list", base(System::Teamleader)))
                .bearer_auth("nope")
                .json(&json!({})),
        ),
        (
            System::Reviso,
            c.get(format!("{}/customers", base(System::Reviso)))
                .header("X-AppSecretToken", "nope")
                .header("X-AgreementGrantToken", "nope"),
        ),
        (
            System::EAccounting,
            c.get(format!("{}/customers", base(System::EAccounting)))
                .bearer_auth("nope"),
        ),
    ];
    for (system, req) in cases {
        let (status, body) = json(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{system}");
        match system {
            System::MoySklad => assert_eq!(body["errors"][0]["code"], 1056),
            System::RetailCrm => assert_eq!(
                body,
                json!({"success": false, "errorMsg": "Wrong \"apiKey\" value."})
            ),
            System::Teamleader => assert_eq!(body["errors"][0]["status"], 401),
            System::Reviso => assert_eq!(body["httpStatusCode"], 401),
            System::EAccounting => assert!(body["DeveloperErrorMessage"].is_string()),
        }
    }
    // No key at all is refused too, and retailCRM says so.
    let (status, body) = json(
        c.get(format!("{}/customers", base(System::RetailCrm)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errorMsg"], "\"apiKey\" is missing.");
    assert_eq!(em.stats().total().unauthorized, 6);
}

#[tokio::test]
async fn moysklad_creates_updates_batches_and_wants_gzip() {
    let em = start(config(5)).await;
    let c = client();
    let sys = System::MoySklad;

    let plain = Client::builder().no_proxy().no_gzip().build().unwrap();
    let resp = plain
        .get(format!("{}/entity/counterparty", em.base_url(sys)))
        .bearer_auth(cred(&em, sys, "token"))
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, 415);
    assert!(body["errors"][0]["error"].is_string());

    // reqwest decodes gzip itself and drops the header; look at the raw bytes.
    let resp = plain
        .get(format!("{}/entity/counterparty?limit=1", em.base_url(sys)))
        .bearer_auth(cred(&em, sys, "token"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&resp.bytes().await.unwrap()[..]),
        &mut text,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["meta"]["limit"],
        1
    );

    // Basic auth works as well as the token.
    let resp = c
        .get(format!("{}/entity/product?limit=1", em.base_url(sys)))
        .basic_auth(cred(&em, sys, "login"), Some(cred(&em, sys, "password")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let sync = "7d7c4b2e-1f0a-4c55-9a34-9d1b0e6c2f11";
    let new = json!({"name": "ООО «Новый клиент»", "email": "new@client.ru", "syncId": sync});
    let (status, created) = json(
        call(&c, &em, sys, "POST", "/entity/counterparty")
            .json(&new)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["meta"]["href"],
        format!("{}/entity/counterparty/{id}", em.base_url(sys))
    );
    let (_, again) = json(
        call(&c, &em, sys, "POST", "/entity/counterparty")
            .json(&new)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        again["id"], created["id"],
        "a repeated syncId returns the same record"
    );
    assert_eq!(em.records(sys, "counterparty").len(), 6);

    let (status, read) = json(
        call(&c, &em, sys, "GET", &format!("/entity/counterparty/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read["name"], "ООО «Новый клиент»");

    let (status, updated) = json(
        call(&c, &em, sys, "PUT", &format!("/entity/counterparty/{id}"))
            .json(&json!({"email": "changed@client.ru"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["email"], "changed@client.ru");
    assert_eq!(updated["name"], read["name"], "PUT is a partial update");
    assert!(updated["updated"].as_str() > read["updated"].as_str());

    // A batch: one update by meta.href, one create.
    let seeded = em
        .records(sys, "counterparty")
        .into_iter()
        .find(|r| r["id"] != created["id"])
        .unwrap();
    let batch = json!([
        {"meta": seeded["meta"], "phone": "+7 900 000-00-00"},
        {"name": "ИП Сидоров"},
    ]);
    let (status, out) = json(
        call(&c, &em, sys, "POST", "/entity/counterparty")
            .json(&batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out[0]["id"], seeded["id"]);
    assert_eq!(out[0]["phone"], "+7 900 000-00-00");
    assert!(out[1]["id"].is_string());
    assert_eq!(em.records(sys, "counterparty").len(), 7);

    // The newest updates come last under order=updated,asc and pass the filter.
    let since = updated["updated"].as_str().unwrap()[..19].to_string();
    let (_, page) = json(
        call(&c, &em, sys, "GET", "/entity/counterparty")
            .query(&[
                ("filter", format!("updated>={since}")),
                ("order", "updated,asc".into()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(page["meta"]["size"], 3, "{names:?}");
    assert_eq!(names.last(), Some(&"ИП Сидоров"));

    // An invalid item fails the whole batch.
    let (status, body) = json(
        call(&c, &em, sys, "POST", "/entity/counterparty")
            .json(&json!([{"name": "ok"}, {"email": "x"}]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 412);
    assert_eq!(body["errors"][0]["parameter"], "name");
    assert_eq!(em.records(sys, "counterparty").len(), 7);
    assert_eq!(em.stats().system(sys).writes, 4);
}

async fn history(c: &Client, em: &Emulator, since: u64) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut since = since;
    for _ in 0..100 {
        let (status, body) = json(
            call(c, em, System::RetailCrm, "GET", "/customers/history")
                .query(&[
                    ("filter[sinceId]", since.to_string()),
                    ("limit", "100".into()),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let page = body["history"].as_array().unwrap().clone();
        if page.is_empty() {
            return rows;
        }
        since = page.last().unwrap()["id"].as_u64().unwrap();
        rows.extend(page);
    }
    panic!("history did not end");
}

#[tokio::test]
async fn retailcrm_writes_are_form_encoded_and_land_in_the_history() {
    let em = start(config(30)).await;
    let c = client();
    let sys = System::RetailCrm;
    let seeded = history(&c, &em, 0).await;
    assert_eq!(seeded.len(), 30, "one creation row per seeded customer");
    let ids: Vec<u64> = seeded.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let last = *ids.last().unwrap();

    let customer = json!({"externalId": "ext-1", "firstName": "Ольга", "email": "olga@example.ru"});
    let (status, body) = json(
        call(&c, &em, sys, "POST", "/customers/create")
            .form(&[
                ("customer", customer.to_string()),
                ("site", "main-store".into()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_u64().unwrap();
    assert_eq!(id, 31);

    let (_, read) = json(
        call(&c, &em, sys, "GET", "/customers/ext-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["customer"]["id"], 31);
    assert_eq!(read["customer"]["firstName"], "Ольга");

    let (status, body) = json(
        call(&c, &em, sys, "POST", &format!("/customers/{id}/edit"))
            .form(&[
                ("by", "id".to_string()),
                ("customer", json!({"email": "olga@new.ru"}).to_string()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, read) = json(
        call(&c, &em, sys, "GET", &format!("/customers/{id}?by=id"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["customer"]["email"], "olga@new.ru");

    em.admin_patch(sys, "customers", "31", json!({"lastName": "Петрова"}))
        .unwrap();

    let rows = history(&c, &em, last).await;
    let summary: Vec<(String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap().to_string(),
                r["apiKey"]["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("id".into(), true),
            ("email".into(), true),
            ("last_name".into(), false)
        ]
    );
    assert_eq!(rows[0]["created"], true);
    assert_eq!(rows[1]["oldValue"], "olga@example.ru");
    assert_eq!(rows[1]["newValue"], "olga@new.ru");
    assert_eq!(rows[2]["customer"]["lastName"], "Петрова");

    // A duplicate externalId fails its item; the batch answers 460.
    let batch = json!([{"externalId": "ext-1"}, {"externalId": "ext-2", "firstName": "Иван"}]);
    let (status, body) = json(
        call(&c, &em, sys, "POST", "/customers/upload")
            .form(&[("customers", batch.to_string())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 460, "{body}");
    assert_eq!(body["failedCustomers"][0]["externalId"], "ext-1");
    assert_eq!(body["uploadedCustomers"][0]["externalId"], "ext-2");
    assert_eq!(history(&c, &em, last).await.len(), 4);

    let (status, body) = json(
        call(&c, &em, sys, "GET", "/customers")
            .query(&[("limit", "25")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["errors"]["limit"].is_string());
}

#[tokio::test]
async fn teamleader_and_eaccounting_refresh_tokens_rotate() {
    let em = start(config(3)).await;
    let c = client();
    for system in [System::Teamleader, System::EAccounting] {
        let url = em.token_url(system).unwrap();
        let refresh = cred(&em, system, "refresh_token");
        let form = |token: &str| {
            vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", token.to_string()),
                ("client_id", cred(&em, system, "client_id")),
                ("client_secret", cred(&em, system, "client_secret")),
            ]
        };
        let (status, tokens) = json(c.post(&url).form(&form(&refresh)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{system}: {tokens}");
        let next = tokens["refresh_token"].as_str().unwrap();
        assert_ne!(next, refresh);
        assert_eq!(cred(&em, system, "refresh_token"), next);
        let (status, body) = json(c.post(&url).form(&form(&refresh)).send().await.unwrap()).await;
        assert_eq!(status, 400, "{system}: the old refresh token is spent");
        assert_eq!(body["error"], "invalid_grant");

        let access = tokens["access_token"].as_str().unwrap();
        let req = match system {
            System::Teamleader => c
                .post(format!("{}/contacts.list", em.base_url(system)))
                .json(&json!({})),
            _ => c.get(format!("{}/customers", em.base_url(system))),
        };
        assert_eq!(
            req.bearer_auth(access).send().await.unwrap().status(),
            200,
            "{system}"
        );
    }
    // Teamleader also takes the grant as JSON.
    let (status, _) = json(
        c.post(em.token_url(System::Teamleader).unwrap())
            .json(&json!({
                "grant_type": "refresh_token",
                "refresh_token": cred(&em, System::Teamleader, "refresh_token"),
                "client_id": cred(&em, System::Teamleader, "client_id"),
                "client_secret": cred(&em, System::Teamleader, "client_secret"),
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn teamleader_adds_updates_and_filters() {
    let em = start(config(12)).await;
    let c = client();
    let sys = System::Teamleader;
    let (status, body) = json(
        call(&c, &em, sys, "POST", "/contacts.add")
            .json(&json!({"first_name": "Lotte", "last_name": "Peeters", "emails": [{"type": "primary", "email": "lotte@example.be"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["data"]["type"], "contact");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    let (_, info) = json(
        call(&c, &em, sys, "POST", "/contacts.info")
            .json(&json!({"id": id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["data"]["last_name"], "Peeters");

    let resp = call(&c, &em, sys, "POST", "/contacts.update")
        .json(&json!({"id": id, "first_name": "Lot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (_, after) = json(
        call(&c, &em, sys, "POST", "/contacts.info")
            .json(&json!({"id": id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(after["data"]["first_name"], "Lot");
    assert_eq!(after["data"]["last_name"], "Peeters");
    assert!(after["data"]["updated_at"].as_str() > info["data"]["updated_at"].as_str());

    let since = info["data"]["updated_at"].as_str().unwrap();
    let (_, listed) = json(
        call(&c, &em, sys, "POST", "/contacts.list")
            .json(&json!({"filter": {"updated_since": since}, "page": {"size": 100, "number": 1}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);

    let (status, body) = json(
        call(&c, &em, sys, "POST", "/contacts.add")
            .json(&json!({"first_name": "X"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body["errors"][0]["title"].is_string());
}

#[tokio::test]
async fn reviso_requires_accounting_fields_replaces_whole_records_and_renumbers() {
    let em = start(config(5)).await;
    let c = client();
    let sys = System::Reviso;
    let (status, body) = json(
        call(&c, &em, sys, "POST", "/customers")
            .json(&json!({"name": "Rossi S.r.l."}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["httpStatusCode"], 400);
    assert_eq!(body["errors"].as_array().unwrap().len(), 4);

    let full = json!({
        "name": "Rossi S.r.l.",
        "currency": "EUR",
        "customerGroup": {"customerGroupNumber": 1},
        "vatZone": {"vatZoneNumber": 1},
        "paymentTerms": {"paymentTermsNumber": 1},
        "email": "info@rossi.it",
        "city": "Milano",
    });
    let (status, created) = json(
        call(&c, &em, sys, "POST", "/customers")
            .json(&full)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let number = created["customerNumber"].as_u64().unwrap();
    assert_eq!(number, 6);
    assert_eq!(created["self"], format!("{}/customers/6", em.base_url(sys)));

    // PUT replaces: a field left out is gone.
    let mut replaced = created.clone();
    replaced.as_object_mut().unwrap().remove("city");
    replaced["email"] = json!("amministrazione@rossi.it");
    let (status, after) = json(
        call(&c, &em, sys, "PUT", "/customers/6")
            .json(&replaced)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["email"], "amministrazione@rossi.it");
    assert!(after.get("city").is_none());
    assert!(after["lastUpdated"].as_str() > created["lastUpdated"].as_str());
    replaced.as_object_mut().unwrap().remove("vatZone");
    let (status, _) = json(
        call(&c, &em, sys, "PUT", "/customers/6")
            .json(&replaced)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);

    let before = em.records(sys, "customers")[2].clone();
    let moved = em.renumber_reviso(3, 9003).unwrap();
    assert_eq!(moved["name"], before["name"]);
    assert_eq!(
        moved["self"],
        format!("{}/customers/9003", em.base_url(sys))
    );
    let (status, _) = json(
        call(&c, &em, sys, "GET", "/customers/3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, read) = json(
        call(&c, &em, sys, "GET", "/customers/9003")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read["email"], before["email"]);
    let (_, contacts) = json(
        call(&c, &em, sys, "GET", "/customers/9003/contacts")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(contacts["collection"].as_array().unwrap().len(), 1);
    assert!(em.renumber_reviso(1, 9003).is_err(), "numbers stay unique");

    // An admin create gets the defaults the UI fills in, so a PUT of it works.
    let added = em
        .admin_create(sys, "customers", json!({"name": "Bianchi"}))
        .unwrap();
    assert_eq!(added["customerNumber"], 7);
    assert_eq!(
        added["vatZone"]["self"],
        format!("{}/vat-zones/1", em.base_url(sys))
    );
    let (status, _) = json(
        call(&c, &em, sys, "PUT", "/customers/7")
            .json(&added)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    let (_, page) = json(
        call(&c, &em, sys, "GET", "/customers")
            .query(&[(
                "filter",
                format!("lastUpdated$gte:{}", after["lastUpdated"].as_str().unwrap()),
            )])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let numbers: Vec<u64> = page["collection"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customerNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![6, 9003, 7]);
}

#[tokio::test]
async fn eaccounting_replaces_records_and_filters_by_change_time() {
    let em = start(config(8)).await;
    let c = client();
    let sys = System::EAccounting;
    let (status, first) = json(
        call(&c, &em, sys, "GET", "/customers")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let cursor = first["Meta"]["ServerTimeUtc"].as_str().unwrap().to_string();

    let new = json!({
        "Name": "Nordic Tools AB",
        "InvoiceCity": "Stockholm",
        "InvoicePostalCode": "111 22",
        "TermsOfPaymentId": "8f9a0000-0000-4000-8000-000000000001",
        "IsPrivatePerson": false,
        "EmailAddress": "info@nordic.se",
    });
    let (status, created) = json(
        call(&c, &em, sys, "POST", "/customers")
            .json(&new)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["Id"].as_str().unwrap().to_string();
    assert_eq!(created["CustomerNumber"], "9");

    let mut replaced = new.clone();
    replaced["EmailAddress"] = json!("order@nordic.se");
    let (status, after) = json(
        call(&c, &em, sys, "PUT", &format!("/customers/{id}"))
            .json(&replaced)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(after["EmailAddress"], "order@nordic.se");
    assert_eq!(
        after["CustomerNumber"], "9",
        "the number is kept when left out"
    );
    assert!(after["ChangedUtc"].as_str() > created["ChangedUtc"].as_str());

    let (_, delta) = json(
        call(&c, &em, sys, "GET", "/customers")
            .query(&[("$filter", format!("ChangedUtc gt {cursor}"))])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(delta["Meta"]["TotalNumberOfResults"], 1);
    assert_eq!(delta["Data"][0]["Id"], id.as_str());

    let (status, body) = json(
        call(&c, &em, sys, "POST", "/customers")
            .json(&json!({"Name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["DeveloperErrorMessage"]
            .as_str()
            .unwrap()
            .contains("InvoiceCity")
    );
}

#[tokio::test]
async fn each_vendor_rate_limit_answers_with_its_own_429() {
    let em = start(Config {
        rate_limits: true,
        ..config(2)
    })
    .await;
    let c = client();
    let started = Instant::now();
    let cases: [(System, &str, usize); 5] = [
        (System::MoySklad, "/entity/product?limit=1", 45),
        (System::RetailCrm, "/customers", 10),
        (System::Teamleader, "/products.list", 200),
        (System::Reviso, "/customers?pagesize=1", 300),
        (System::EAccounting, "/articles?$pagesize=1", 600),
    ];
    for (system, path, limit) in cases {
        let method = if system == System::Teamleader {
            "POST"
        } else {
            "GET"
        };
        let mut limited = None;
        for _ in 0..limit + 20 {
            let resp = call(&c, &em, system, method, path).send().await.unwrap();
            if resp.status() == 429 {
                limited = Some(resp);
                break;
            }
            assert_eq!(resp.status(), 200, "{system}");
        }
        let resp =
            limited.unwrap_or_else(|| panic!("{system}: no 429 within {} requests", limit + 20));
        let headers = resp.headers().clone();
        let (_, body) = json(resp).await;
        match system {
            System::MoySklad => {
                assert_eq!(body["errors"][0]["code"], 1049);
                assert_eq!(headers["x-ratelimit-limit"], "45");
                assert!(
                    headers["x-lognex-retry-after"]
                        .to_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                        <= 3000
                );
            }
            System::RetailCrm => {
                assert_eq!(body["success"], false);
                assert!(headers.get("retry-after").is_none());
            }
            System::Teamleader | System::Reviso => {
                assert!(
                    headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                        >= 1
                );
            }
            System::EAccounting => {
                assert_eq!(body["ErrorCode"], 4010);
                assert!(
                    body["DeveloperErrorMessage"]
                        .as_str()
                        .unwrap()
                        .contains("Try again in")
                );
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(em.stats().total().rate_limited, 5);
}

#[tokio::test]
async fn moysklad_refuses_a_sixth_parallel_request() {
    let em = start(Config {
        rate_limits: true,
        faults: Faults {
            slow: 1.0,
            slow_ms: 400,
            ..Faults::default()
        },
        ..config(2)
    })
    .await;
    let c = client();
    let requests =
        (0..8).map(|_| call(&c, &em, System::MoySklad, "GET", "/entity/product?limit=1").send());
    let responses = futures_join(requests).await;
    let mut parallel = 0;
    for resp in responses {
        if resp.status() == 429 {
            let (_, body) = json(resp).await;
            assert_eq!(body["errors"][0]["code"], 1073);
            parallel += 1;
        }
    }
    assert!(parallel >= 1, "8 slow requests at once exceed 5 in flight");
}

/// Run futures concurrently on the test's runtime.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<Response>
where
    F: std::future::Future<Output = reqwest::Result<Response>> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn injected_500s_change_nothing_and_malformed_pages_do_not_parse() {
    let em = start(Config {
        faults: "500=1".parse().unwrap(),
        ..config(3)
    })
    .await;
    let c = client();
    for system in System::ALL {
        let req = match system {
            System::MoySklad => {
                call(&c, &em, system, "POST", "/entity/counterparty").json(&json!({"name": "x"}))
            }
            System::RetailCrm => {
                call(&c, &em, system, "POST", "/customers/create").form(&[("customer", "{}")])
            }
            System::Teamleader => {
                call(&c, &em, system, "POST", "/contacts.add").json(&json!({"last_name": "x"}))
            }
            System::Reviso => call(&c, &em, system, "GET", "/customers"),
            System::EAccounting => call(&c, &em, system, "GET", "/customers"),
        };
        let (status, body) = json(req.send().await.unwrap()).await;
        assert_eq!(status, 500, "{system}");
        let shaped = match system {
            System::MoySklad => body["errors"][0]["code"].is_number(),
            System::RetailCrm => body["success"] == false,
            System::Teamleader => body["errors"][0]["status"] == 500,
            System::Reviso => body["httpStatusCode"] == 500,
            System::EAccounting => body["ErrorCode"].is_number(),
        };
        assert!(shaped, "{system}: {body}");
    }
    assert_eq!(em.records(System::MoySklad, "counterparty").len(), 3);
    assert_eq!(em.records(System::RetailCrm, "customers").len(), 3);
    assert_eq!(em.records(System::Teamleader, "contacts").len(), 3);
    let stats = em.stats().total();
    assert_eq!((stats.faults_500, stats.writes), (5, 0));
    em.shutdown().await;

    let em = start(Config {
        faults: "malformed=1".parse().unwrap(),
        ..config(3)
    })
    .await;
    for (system, method, path) in [
        (System::MoySklad, "GET", "/entity/counterparty"),
        (System::RetailCrm, "GET", "/customers"),
        (System::Teamleader, "POST", "/contacts.list"),
        (System::Reviso, "GET", "/customers"),
        (System::EAccounting, "GET", "/customers"),
    ] {
        let resp = call(&c, &em, system, method, path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{system}");
        let text = resp.text().await.unwrap();
        assert!(!text.is_empty(), "{system}");
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{system}: {text}"
        );
    }
    // Single reads are not lists: they stay whole.
    let id = em.records(System::MoySklad, "counterparty")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = json(
        call(
            &c,
            &em,
            System::MoySklad,
            "GET",
            &format!("/entity/counterparty/{id}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(em.stats().total().faults_malformed, 5);
    em.shutdown().await;

    // Injected 429s carry the vendor's wait; slow requests take their time.
    let em = start(Config {
        faults: "429=1,slow=1:150".parse().unwrap(),
        ..config(3)
    })
    .await;
    let started = Instant::now();
    let resp = call(&c, &em, System::MoySklad, "GET", "/entity/product")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-lognex-retry-after"], "200");
    let resp = call(&c, &em, System::Teamleader, "POST", "/products.list")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let stats = em.stats().total();
    assert_eq!(
        (
            stats.faults_429,
            stats.faults_slow,
            stats.faults,
            stats.requests
        ),
        (2, 2, 4, 2)
    );
}

#[tokio::test]
async fn admin_endpoints_and_saved_state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let em = start(config(4)).await;
    let c = client();
    let admin = format!("{}/_admin", em.root());

    let (status, created) = json(
        c.post(format!("{admin}/moysklad/counterparty"))
            .json(&json!({"name": "Через админку"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, patched) = json(
        c.patch(format!("{admin}/moysklad/counterparty/{id}"))
            .json(&json!({"email": "admin@example.ru"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["email"], "admin@example.ru");
    let seeded = em.records(System::EAccounting, "articles")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = c
        .delete(format!("{admin}/eaccounting/articles/{seeded}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = json(
        c.post(format!("{admin}/reviso/renumber"))
            .json(&json!({"oldNumber": 2, "newNumber": 200}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    em.admin_patch(
        System::RetailCrm,
        "customers",
        "1",
        json!({"email": "changed@example.ru"}),
    )
    .unwrap();
    let (_, tokens) = json(
        c.post(em.token_url(System::EAccounting).unwrap())
            .form(&[
                ("grant_type", "refresh_token".to_string()),
                (
                    "refresh_token",
                    cred(&em, System::EAccounting, "refresh_token"),
                ),
                ("client_id", cred(&em, System::EAccounting, "client_id")),
                (
                    "client_secret",
                    cred(&em, System::EAccounting, "client_secret"),
                ),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;

    let (status, state) = json(c.get(format!("{admin}/state")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        state["eaccounting"]["articles"].as_array().unwrap().len(),
        3
    );
    let (_, stats) = json(c.get(format!("{admin}/stats")).send().await.unwrap()).await;
    assert_eq!(stats["systems"]["moysklad"]["admin_writes"], 2);

    let (status, _) = json(
        c.post(format!("{admin}/save"))
            .json(&json!({"path": path}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let snapshot = |em: &Emulator| {
        let mut all = Vec::new();
        for system in System::ALL {
            for entity in system.entities() {
                all.push(
                    serde_json::to_string(&em.records(system, entity))
                        .unwrap()
                        .replace(em.root(), "ROOT"),
                );
            }
        }
        all
    };
    let before = snapshot(&em);
    let old_history = history(&c, &em, 0).await;
    let old_root = em.root().to_string();
    em.shutdown().await;

    // Saved with one seed, loaded under another: the file wins.
    let loaded = start(Config {
        seed: 99,
        state_file: Some(path.clone()),
        ..config(10)
    })
    .await;
    assert_eq!(snapshot(&loaded), before);
    let new_history = history(&c, &loaded, 0).await;
    assert_eq!(
        serde_json::to_string(&new_history)
            .unwrap()
            .replace(loaded.root(), "ROOT"),
        serde_json::to_string(&old_history)
            .unwrap()
            .replace(&old_root, "ROOT"),
    );
    assert_eq!(
        cred(&loaded, System::EAccounting, "refresh_token"),
        tokens["refresh_token"].as_str().unwrap()
    );
    // Access tokens do not survive a restart.
    let resp = c
        .get(format!(
            "{}/customers",
            loaded.base_url(System::EAccounting)
        ))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Writes continue the logical clock after the saved ones.
    let later = loaded
        .admin_patch(
            System::MoySklad,
            "counterparty",
            id,
            json!({"phone": "+7 900"}),
        )
        .unwrap();
    assert!(later["updated"].as_str() > patched["updated"].as_str());
    loaded.save(&path).unwrap();
    loaded.shutdown().await;
}

#[tokio::test]
async fn a_million_records_are_served_without_being_stored() {
    let em = start(config(1_000_000)).await;
    let c = client();
    let started = Instant::now();
    let (status, page) = json(
        call(&c, &em, System::MoySklad, "GET", "/entity/counterparty")
            .query(&[("limit", "3"), ("offset", "999998")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["meta"]["size"], 1_000_000);
    assert_eq!(page["rows"].as_array().unwrap().len(), 2);
    let id = page["rows"][1]["id"].as_str().unwrap();
    let (status, one) = json(
        call(
            &c,
            &em,
            System::MoySklad,
            "GET",
            &format!("/entity/counterparty/{id}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one, page["rows"][1]);
    assert!(started.elapsed() < Duration::from_secs(10));
}
