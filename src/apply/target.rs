//! The receiving side of an apply: a file (a new version of it is written,
//! never the old one changed in place) or an HTTP API (through the side's
//! profile: partial or whole-record updates, batches, idempotent creates).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::native::merge;
use crate::connect::http::profile::{Method, Write};
use crate::connect::http::{Body, Client, HttpError, HttpSource};
use crate::connect::{Item, file};
use crate::spec::{FieldPath, FileFormat, FileSource};

/// A request apply would send: what `--dry-run` prints.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub method: Method,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Body>,
}

impl Prepared {
    /// One line per request, with secrets taken out by `redact`.
    pub fn describe(&self, redact: &dyn Fn(&str) -> String) -> String {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!(
                "?{}",
                self.query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            )
        };
        let body = match &self.body {
            Some(Body::Json(v)) => v.to_string(),
            Some(Body::Form(f)) => f
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
            None => String::new(),
        };
        let method = match self.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        };
        redact(&format!("{method} {}{q} {body}", self.url))
    }
}

/// An HTTP receiver.
pub struct HttpTarget {
    pub client: Client,
    pub src: HttpSource,
}

fn fill(path: &str, id: &str) -> String {
    path.replace("{id}", &id.replace('/', "%2F"))
}

fn body_for(write_body: &str, native: Value) -> Body {
    match write_body.strip_prefix("form:") {
        Some(field) => Body::Form(vec![(field.to_string(), native.to_string())]),
        None => Body::Json(native),
    }
}

impl HttpTarget {
    pub fn new(src: &HttpSource, token_store: Option<PathBuf>) -> Result<Self, String> {
        Ok(Self {
            client: Client::new(src, token_store)?,
            src: src.clone(),
        })
    }

    fn write(&self, which: &str) -> Result<&Write, String> {
        let e = self.src.entity();
        match which {
            "create" => e.create.as_ref(),
            "update" => e.update.as_ref(),
            _ => e.delete.as_ref(),
        }
        .ok_or_else(|| {
            format!(
                "profile `{}` cannot {which} `{}` records",
                self.src.profile.name, self.src.entity
            )
        })
    }

    /// The create request for a native record. `sync_id` makes it idempotent
    /// where the system supports that; `external` carries the sender's id.
    pub fn prepare_create(
        &self,
        mut native: Value,
        sync_id: &str,
        external: &str,
    ) -> Result<Prepared, String> {
        let w = self.write("create")?;
        if let Some(field) = &w.idempotency {
            FieldPath::key(field).set(&mut native, Value::String(sync_id.to_string()));
        }
        if let Some(field) = &w.external_id {
            FieldPath::key(field).set(&mut native, Value::String(external.to_string()));
        }
        Ok(Prepared {
            method: w.method,
            url: self.client.url(&w.path),
            query: w
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: Some(body_for(&w.body, native)),
        })
    }

    /// The update request; `whole` is the current record for systems that
    /// replace the whole record on update.
    pub fn prepare_update(
        &self,
        id: &str,
        partial: Value,
        whole: Option<Value>,
    ) -> Result<Prepared, String> {
        let w = self.write("update")?;
        let mut body = match (w.mode.as_str(), whole) {
            ("replace", Some(mut whole)) => {
                merge(&mut whole, &partial);
                whole
            }
            ("replace", None) => {
                return Err(
                    "the current record could not be read for a whole-record update".into(),
                );
            }
            _ => partial,
        };
        if let Some(field) = &w.id_field {
            FieldPath::key(field).set(&mut body, Value::String(id.to_string()));
        }
        Ok(Prepared {
            method: w.method,
            url: self.client.url(&fill(&w.path, id)),
            query: w
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: Some(body_for(&w.body, body)),
        })
    }

    pub fn prepare_delete(&self, id: &str) -> Result<Prepared, String> {
        let w = self.write("delete")?;
        Ok(Prepared {
            method: w.method,
            url: self.client.url(&fill(&w.path, id)),
            query: w
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: None,
        })
    }

    /// Whether updates send the whole record (read first).
    pub fn replaces(&self) -> bool {
        self.src
            .entity()
            .update
            .as_ref()
            .is_some_and(|u| u.mode == "replace")
    }

    /// Read one record by id.
    pub async fn get(&self, id: &str) -> Result<Value, HttpError> {
        let Some(g) = self.src.entity().get.clone() else {
            return Err(HttpError {
                system: self.src.profile.name.clone(),
                status: None,
                message: "the profile has no way to read one record".into(),
                hint: String::new(),
            });
        };
        let body = g.body.clone().map(|mut b| {
            FieldPath::key("id").set(&mut b, Value::String(id.to_string()));
            Body::Json(b)
        });
        let body = match (g.method, body) {
            (Method::Post, None) => Some(Body::Json(serde_json::json!({ "id": id }))),
            (_, b) => b,
        };
        let q: Vec<(String, String)> = g
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (_, _, doc) = self
            .client
            .send(
                g.method,
                &self.client.url(&fill(&g.path, id)),
                &q,
                body.as_ref(),
            )
            .await?;
        // Single-record reads wrap the record in some APIs (`data`, `customer`).
        Ok(match &doc {
            Value::Object(m)
                if m.len() <= 2 && m.values().any(Value::is_object) && !m.contains_key("id") =>
            {
                m.values().find(|v| v.is_object()).cloned().unwrap_or(doc)
            }
            _ => doc,
        })
    }

    pub async fn send(&self, p: &Prepared) -> Result<Value, HttpError> {
        self.client
            .send(p.method, &p.url, &p.query, p.body.as_ref())
            .await
            .map(|r| r.2)
    }

    /// The new record's id in a create response.
    pub fn created_id(&self, response: &Value) -> Option<String> {
        let w = self.src.entity().create.as_ref()?;
        let path = FieldPath::parse(w.id.as_deref().unwrap_or("id")).ok()?;
        path.get(response).and_then(crate::spec::path::scalar_text)
    }

    /// Up to how many creates go in one request, if the system batches.
    pub fn batch_size(&self) -> Option<usize> {
        self.src
            .entity()
            .batch
            .as_ref()
            .filter(|b| b.body == "json")
            .map(|b| b.max)
    }

    /// Up to how many partial updates go in one request, if the system
    /// updates in batches (and takes partial records).
    pub fn batch_update_size(&self) -> Option<usize> {
        let b = self
            .src
            .entity()
            .batch
            .as_ref()
            .filter(|_| self.src.batch)?;
        (b.body == "json" && b.update_href.is_some() && !self.replaces()).then_some(b.max)
    }

    /// One request updating many records: each item names its record.
    pub fn prepare_batch_update(&self, items: Vec<(String, Value)>) -> Option<Prepared> {
        let b = self.src.entity().batch.as_ref()?;
        let href = b.update_href.as_ref()?;
        let items = items
            .into_iter()
            .map(|(id, mut partial)| {
                let url = self.client.url(&fill(href, &id));
                FieldPath::parse("meta.href")
                    .expect("a valid path")
                    .set(&mut partial, Value::String(url));
                partial
            })
            .collect();
        Some(Prepared {
            method: b.method,
            url: self.client.url(&b.path),
            query: vec![],
            body: Some(Body::Json(Value::Array(items))),
        })
    }

    /// One request creating many records (JSON array, answered in order).
    pub fn prepare_batch(&self, items: Vec<Value>) -> Option<Prepared> {
        let b = self.src.entity().batch.as_ref()?;
        Some(Prepared {
            method: b.method,
            url: self.client.url(&b.path),
            query: vec![],
            body: Some(Body::Json(Value::Array(items))),
        })
    }
}

/// A file receiver: all records in memory, written back as a new version.
pub struct FileTarget {
    pub src: FileSource,
    pub id: FieldPath,
    pub records: Vec<Value>,
    index: HashMap<String, usize>,
    /// The whole JSON document when records sit below its top.
    doc: Option<Value>,
    headers: Vec<String>,
}

impl FileTarget {
    pub fn open(src: &FileSource, id: &FieldPath) -> Result<Self, String> {
        if src.format == FileFormat::Parquet {
            return Err(format!(
                "{} is a Parquet source; recon writes only CSV and JSON files",
                src.path.display()
            ));
        }
        let mut records = Vec::new();
        let mut headers: Vec<String> = Vec::new();
        file::read(src, &mut |item| {
            if let Item::Record { value, .. } = item {
                if headers.is_empty()
                    && let Some(o) = value.as_object()
                {
                    headers = o.keys().cloned().collect();
                }
                records.push(value);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        let doc = match (&src.format, &src.records) {
            (FileFormat::Json, Some(_)) => {
                let text = std::fs::read_to_string(&src.path).map_err(|e| e.to_string())?;
                Some(
                    serde_json::from_str(text.trim_start_matches('\u{feff}'))
                        .map_err(|e| e.to_string())?,
                )
            }
            _ => None,
        };
        let index = records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                id.get(r)
                    .and_then(crate::spec::path::scalar_text)
                    .map(|k| (k, i))
            })
            .collect();
        Ok(Self {
            src: src.clone(),
            id: id.clone(),
            records,
            index,
            doc,
            headers,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Value> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    /// Add a record; its id is the one it carries, else the sender's id
    /// (made unique).
    pub fn create(&mut self, mut native: Value, sender_id: &str) -> String {
        let id = match self
            .id
            .get(&native)
            .and_then(crate::spec::path::scalar_text)
        {
            Some(id) if !self.index.contains_key(&id) => id,
            _ => {
                let mut id = sender_id.to_string();
                let mut n = 1;
                while self.index.contains_key(&id) {
                    n += 1;
                    id = format!("{sender_id}-{n}");
                }
                self.id.set(&mut native, Value::String(id.clone()));
                id
            }
        };
        self.index.insert(id.clone(), self.records.len());
        self.records.push(native);
        id
    }

    pub fn update(&mut self, id: &str, partial: &Value) -> Result<(), String> {
        let i = *self
            .index
            .get(id)
            .ok_or_else(|| format!("record `{id}` is no longer in {}", self.src.path.display()))?;
        merge(&mut self.records[i], partial);
        Ok(())
    }

    pub fn delete(&mut self, id: &str) {
        if let Some(i) = self.index.remove(id) {
            self.records[i] = Value::Null;
        }
    }

    /// Write the new version atomically; the old one is kept beside it as
    /// `<name>.<stamp>.bak`. Returns the backup's path.
    pub fn save(&self, stamp: &str) -> std::io::Result<PathBuf> {
        let path = &self.src.path;
        let live: Vec<&Value> = self.records.iter().filter(|r| !r.is_null()).collect();
        let bytes = match self.src.format {
            FileFormat::Json => {
                let array = Value::Array(live.into_iter().cloned().collect());
                let doc = match (&self.doc, &self.src.records) {
                    (Some(doc), Some(p)) => {
                        let mut d = doc.clone();
                        p.set(&mut d, array);
                        d
                    }
                    _ => array,
                };
                serde_json::to_vec_pretty(&doc)?
            }
            FileFormat::Ndjson => {
                let mut out = Vec::new();
                for r in live {
                    out.extend(serde_json::to_vec(r)?);
                    out.push(b'\n');
                }
                out
            }
            FileFormat::Csv => csv_bytes(&self.headers, &live, self.src.delimiter)?,
            FileFormat::Parquet => {
                return Err(std::io::Error::other("Parquet sides are read-only"));
            }
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
        let backup = path.with_file_name(format!("{name}.{stamp}.bak"));
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        {
            let f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut &f, &bytes)?;
            f.sync_all()?;
        }
        std::fs::copy(path, &backup)?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(backup)
    }
}

fn csv_bytes(headers: &[String], rows: &[&Value], delimiter: u8) -> std::io::Result<Vec<u8>> {
    let mut cols: Vec<String> = headers.to_vec();
    for r in rows {
        if let Some(o) = r.as_object() {
            for k in o.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    w.write_record(&cols)?;
    let empty = Map::new();
    for r in rows {
        let o = r.as_object().unwrap_or(&empty);
        w.write_record(cols.iter().map(|c| match o.get(c) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }))?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// A stable UUID for a plan row: the same row always sends the same one, so
/// a create repeated after a crash is recognised by the system.
pub fn row_uuid(plan: &str, row: i64) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{plan}#{row}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}
