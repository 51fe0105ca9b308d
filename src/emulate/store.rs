//! Records of one entity. Seeded records are a pure function of (seed,
//! slot) and are generated when read, so a million-record emulator starts at
//! once and stays small; only records written since the start live in memory
//! (the overlay), and only they go into a saved state file.
//!
//! Every table lists in one natural order, oldest update first: the seeded
//! records by slot (their update times rise with the slot), then the written
//! ones in the order of their last write (the write clock starts after the
//! newest seeded update). That makes an `updated >= T` filter a suffix and
//! offset pagination arithmetic, whatever the record count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::System;
use crate::bench::Rng;

pub(super) const SECOND: i64 = 1000;
/// Seeded records were created during 2022 ...
const CREATED_FROM: i64 = 1_640_995_200_000;
/// ... and last updated during 2023-2024; writes are stamped after that.
const UPDATED_FROM: i64 = 1_672_531_200_000;
const CLOCK_EPOCH: i64 = 1_735_689_600_000;

/// SplitMix64's finalizer: a bijection on u64 that scatters nearby inputs.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit name for a string (FNV-1a), to derive per-entity streams.
pub(super) fn salt(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The generator for one record: the same (seed, salt, slot) always yields
/// the same values, independent of every other record.
pub(super) fn rng(seed: u64, salt: u64, slot: usize) -> Rng {
    Rng::new(mix(seed ^ mix(salt ^ mix(slot as u64))))
}

const M31: u64 = (1 << 31) - 1;
const M62: u64 = (1 << 62) - 1;

fn feistel_round(half: u64, key: u64, round: u64) -> u64 {
    mix(half ^ mix(key ^ round)) & M31
}

/// A keyed permutation of 62-bit numbers: slot numbers become
/// random-looking UUIDs that can still be turned back into slots.
fn permute(x: u64, key: u64) -> u64 {
    let (mut l, mut r) = (x >> 31, x & M31);
    for round in 0..4 {
        (l, r) = (r, l ^ feistel_round(r, key, round));
    }
    (l << 31) | r
}

fn unpermute(y: u64, key: u64) -> u64 {
    let (mut l, mut r) = (y >> 31, y & M31);
    for round in (0..4).rev() {
        (l, r) = (r ^ feistel_round(l, key, round), l);
    }
    (l << 31) | r
}

/// The UUID (version 4 layout) of `slot` in the id space named by `salt`.
pub(super) fn uuid(seed: u64, salt: u64, slot: usize) -> String {
    let key = mix(seed ^ salt);
    let hi = (mix(key ^ slot as u64) & !0xF000) | 0x4000;
    let lo = (0b10 << 62) | permute(slot as u64 & M62, key);
    uuid::Uuid::from_u64_pair(hi, lo).to_string()
}

/// The slot whose [`uuid`] is `text`, if any.
pub(super) fn uuid_slot(seed: u64, salt: u64, text: &str) -> Option<usize> {
    let id = uuid::Uuid::parse_str(text).ok()?;
    let (_, lo) = id.as_u64_pair();
    let slot = usize::try_from(unpermute(lo & M62, mix(seed ^ salt))).ok()?;
    (uuid(seed, salt, slot) == text.to_ascii_lowercase()).then_some(slot)
}

/// A token-like string derived from the seed: credentials stay the same
/// across restarts with the same seed, so a demo's environment keeps working.
pub(super) fn secret(seed: u64, name: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rng(seed, salt(name), 0);
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// What every generator of one system shares.
pub(super) struct Ctx {
    pub system: System,
    pub seed: u64,
    /// Seeded records per entity.
    pub n: usize,
    /// `http://host:port`, for links records carry.
    pub root: String,
    base: String,
}

impl Ctx {
    pub fn new(system: System, seed: u64, n: usize, root: String) -> Self {
        Self {
            base: format!("{root}{}", system.base_path()),
            system,
            seed,
            n,
            root,
        }
    }

    /// The system's base URL, e.g. `http://127.0.0.1:8080/moysklad/api/remap/1.2`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The salt of one of this system's id spaces.
    pub fn salt(&self, entity: &str) -> u64 {
        salt(&format!("{}/{entity}", self.system.name()))
    }

    pub fn uuid(&self, entity: &str, slot: usize) -> String {
        uuid(self.seed, self.salt(entity), slot)
    }

    pub fn uuid_slot(&self, entity: &str, text: &str) -> Option<usize> {
        uuid_slot(self.seed, self.salt(entity), text)
    }

    pub fn rng(&self, entity: &str, slot: usize) -> Rng {
        rng(self.seed, self.salt(entity), slot)
    }

    fn step(&self, span: i64) -> i64 {
        let step = span / self.n.max(1) as i64;
        (step - step % SECOND).max(SECOND)
    }

    /// When seeded records stop: the write clock starts one second later.
    pub fn epoch(&self) -> i64 {
        let end = UPDATED_FROM + self.step(CLOCK_EPOCH - UPDATED_FROM) * self.n as i64;
        end.max(CLOCK_EPOCH)
    }

    /// Creation and last update of a seeded record: each slot gets its own
    /// window, so both times rise strictly with the slot.
    pub fn seeded_times(&self, entity: &str, slot: usize, precision: i64) -> Times {
        let jitter = mix(self.seed ^ self.salt(entity) ^ slot as u64);
        let at = |from: i64, span: i64, jitter: u64| {
            let step = self.step(span);
            let offset = (jitter % step as u64) as i64;
            from + slot as i64 * step + offset - offset % precision
        };
        Times {
            created: at(CREATED_FROM, UPDATED_FROM - CREATED_FROM, jitter),
            updated: at(UPDATED_FROM, CLOCK_EPOCH - UPDATED_FROM, jitter >> 20),
        }
    }
}

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Times {
    pub created: i64,
    pub updated: i64,
}

/// How one entity of one system is generated and identified.
pub(super) struct Spec {
    pub name: &'static str,
    /// The field an admin path or a vendor URL names a record by.
    pub pk: &'static str,
    /// Every field a record can be looked up by (the first is `pk`).
    pub keys: &'static [&'static str],
    /// 1 for vendors that show milliseconds, 1000 for whole seconds.
    pub precision: i64,
    pub generate: fn(&Ctx, usize, Times) -> Value,
    /// The slot whose seeded record would carry `value` in `field`; the
    /// table then checks the record really does.
    pub seeded_slot: fn(&Ctx, &str, &str) -> Option<usize>,
}

/// Which time a filter bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum TimeField {
    #[default]
    Updated,
    Created,
}

/// A time window a list is filtered to; bounds are (ms, inclusive).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Window {
    pub field: TimeField,
    pub from: Option<(i64, bool)>,
    pub to: Option<(i64, bool)>,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.after_from(t) && self.before_to(t)
    }
    fn after_from(&self, t: i64) -> bool {
        match self.from {
            Some((f, true)) => t >= f,
            Some((f, false)) => t > f,
            None => true,
        }
    }
    fn before_to(&self, t: i64) -> bool {
        match self.to {
            Some((u, true)) => t <= u,
            Some((u, false)) => t < u,
            None => true,
        }
    }
    fn pick(&self, times: Times) -> i64 {
        match self.field {
            TimeField::Updated => times.updated,
            TimeField::Created => times.created,
        }
    }
}

/// A record on a page: seeded ones are generated after the lock is
/// released, since generating is most of the cost of a big page.
pub(super) enum Item {
    Seeded(usize),
    Stored(Value),
}

/// A page and how to turn it into records without the table.
pub(super) struct Page {
    pub total: usize,
    pub items: Vec<Item>,
    pub spec: &'static Spec,
    pub ctx: Arc<Ctx>,
    rendered: Arc<Rendered>,
}

/// Seeded records as JSON text, rendered once each: a seeded record never
/// changes (a write moves it out of the seeded set), so a page of them is a
/// copy of bytes, as it is for a real server reading its database.
#[derive(Default)]
pub(super) struct Rendered {
    slots: OnceLock<Vec<OnceLock<Box<[u8]>>>>,
}

impl Rendered {
    fn get(&self, spec: &'static Spec, ctx: &Ctx, slot: usize) -> &[u8] {
        let slots = self
            .slots
            .get_or_init(|| (0..ctx.n).map(|_| OnceLock::new()).collect());
        slots[slot].get_or_init(|| {
            let times = ctx.seeded_times(spec.name, slot, spec.precision);
            serde_json::to_vec(&(spec.generate)(ctx, slot, times))
                .unwrap_or_default()
                .into_boxed_slice()
        })
    }
}

impl Page {
    pub fn records(self) -> Vec<Value> {
        let Page {
            items, spec, ctx, ..
        } = self;
        items
            .into_iter()
            .map(|item| match item {
                Item::Seeded(slot) => {
                    let times = ctx.seeded_times(spec.name, slot, spec.precision);
                    (spec.generate)(&ctx, slot, times)
                }
                Item::Stored(v) => v,
            })
            .collect()
    }

    /// The page's records as a JSON array, newest last or, `reversed`,
    /// newest first.
    pub fn json_rows(self, reversed: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.len() * 1024 + 2);
        out.push(b'[');
        let mut items: Box<dyn Iterator<Item = &Item>> = Box::new(self.items.iter());
        if reversed {
            items = Box::new(self.items.iter().rev());
        }
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match item {
                Item::Seeded(slot) => {
                    out.extend_from_slice(self.rendered.get(self.spec, &self.ctx, *slot))
                }
                // Writing JSON to a Vec cannot fail.
                Item::Stored(v) => serde_json::to_writer(&mut out, v).unwrap_or_default(),
            }
        }
        out.push(b']');
        out
    }
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub seq: u64,
    pub times: Times,
    /// None once deleted.
    pub record: Option<Value>,
}

pub(super) struct Table {
    pub spec: &'static Spec,
    pub ctx: Arc<Ctx>,
    next: usize,
    written: HashMap<usize, Entry>,
    /// Seeded slots that have been written or deleted.
    touched: BTreeSet<usize>,
    /// Live written records by the sequence number of their last write.
    order: BTreeMap<u64, usize>,
    index: HashMap<(&'static str, String), usize>,
    rendered: Arc<Rendered>,
}

/// A lookup key as text: ids are strings in some systems, numbers in others.
pub(super) fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Table {
    pub fn new(spec: &'static Spec, ctx: Arc<Ctx>) -> Self {
        Self {
            spec,
            next: ctx.n,
            ctx,
            written: HashMap::new(),
            touched: BTreeSet::new(),
            order: BTreeMap::new(),
            index: HashMap::new(),
            rendered: Arc::default(),
        }
    }

    /// A job that renders every seeded record ahead of the first read, on
    /// all cores; run it without holding the state lock.
    pub fn warmer(&self) -> impl FnOnce() + use<> {
        let (spec, ctx, rendered) = (self.spec, self.ctx.clone(), self.rendered.clone());
        move || {
            let n = ctx.n;
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            let chunk = n.div_ceil(threads).max(1);
            std::thread::scope(|scope| {
                for start in (0..n).step_by(chunk) {
                    let (ctx, rendered) = (&ctx, &rendered);
                    scope.spawn(move || {
                        for slot in start..(start + chunk).min(n) {
                            rendered.get(spec, ctx, slot);
                        }
                    });
                }
            });
        }
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Live records.
    pub fn len(&self) -> usize {
        self.ctx.n - self.touched.len() + self.order.len()
    }

    pub fn times(&self, slot: usize) -> Option<Times> {
        match self.written.get(&slot) {
            Some(e) => e.record.as_ref().map(|_| e.times),
            None if slot < self.ctx.n => Some(self.seeded_times(slot)),
            None => None,
        }
    }

    fn seeded_times(&self, slot: usize) -> Times {
        self.ctx
            .seeded_times(self.spec.name, slot, self.spec.precision)
    }

    fn seeded(&self, slot: usize) -> Value {
        (self.spec.generate)(&self.ctx, slot, self.seeded_times(slot))
    }

    pub fn get(&self, slot: usize) -> Option<Value> {
        match self.written.get(&slot) {
            Some(e) => e.record.clone(),
            None if slot < self.ctx.n => Some(self.seeded(slot)),
            None => None,
        }
    }

    /// The live record whose `field` equals `value`.
    pub fn find(&self, field: &str, value: &str) -> Option<usize> {
        let key = self.spec.keys.iter().find(|k| **k == field)?;
        if let Some(&slot) = self.index.get(&(*key, value.to_string())) {
            return Some(slot);
        }
        let slot = (self.spec.seeded_slot)(&self.ctx, field, value)?;
        if slot >= self.ctx.n || self.written.contains_key(&slot) {
            return None;
        }
        let found = self.seeded(slot).get(field).and_then(key_text);
        (found.as_deref() == Some(value)).then_some(slot)
    }

    pub fn find_id(&self, id: &str) -> Option<usize> {
        self.find(self.spec.pk, id)
    }

    /// The slot the next created record gets; [`Table::put`] takes it, so a
    /// create that fails validation leaves no gap in the ids.
    pub fn next_slot(&self) -> usize {
        self.next
    }

    fn unindex(&mut self, slot: usize) {
        if let Some(Entry {
            record: Some(old), ..
        }) = self.written.get(&slot)
        {
            for key in self.spec.keys {
                if let Some(k) = old.get(*key).and_then(key_text) {
                    self.index.remove(&(*key, k));
                }
            }
        }
        if let Some(e) = self.written.get(&slot) {
            self.order.remove(&e.seq);
        }
    }

    /// Store `record` as the current state of `slot`, written at write
    /// number `seq`; it moves to the end of the natural order.
    pub fn put(&mut self, slot: usize, record: Value, times: Times, seq: u64) {
        self.unindex(slot);
        for key in self.spec.keys {
            if let Some(k) = record.get(*key).and_then(key_text) {
                self.index.insert((*key, k), slot);
            }
        }
        if slot < self.ctx.n {
            self.touched.insert(slot);
        }
        self.next = self.next.max(slot + 1);
        self.order.insert(seq, slot);
        self.written.insert(
            slot,
            Entry {
                seq,
                times,
                record: Some(record),
            },
        );
    }

    pub fn remove(&mut self, slot: usize, seq: u64, now: i64) {
        let times = self.times(slot).unwrap_or(Times {
            created: now,
            updated: now,
        });
        self.unindex(slot);
        if slot < self.ctx.n {
            self.touched.insert(slot);
        }
        self.written.insert(
            slot,
            Entry {
                seq,
                times,
                record: None,
            },
        );
    }

    /// Seeded slots [lo, hi) whose time falls in the window.
    fn seeded_bounds(&self, window: &Window) -> (usize, usize) {
        let first = |pred: &dyn Fn(i64) -> bool| {
            let (mut lo, mut hi) = (0, self.ctx.n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if pred(window.pick(self.seeded_times(mid))) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        };
        let lo = first(&|t| window.after_from(t));
        let hi = first(&|t| !window.before_to(t));
        (lo, hi.max(lo))
    }

    /// The `k`th untouched seeded slot from `lo` on.
    fn seeded_nth(&self, lo: usize, k: usize) -> usize {
        let mut slot = lo + k;
        for &t in self.touched.range(lo..) {
            if t <= slot {
                slot += 1;
            } else {
                break;
            }
        }
        slot
    }

    /// Records in the window, in natural order, from `offset`.
    pub fn page(&self, window: &Window, offset: usize, limit: usize) -> Page {
        let (lo, hi) = self.seeded_bounds(window);
        let seeded = (hi - lo) - self.touched.range(lo..hi).count();
        let tail: Vec<usize> = self
            .order
            .values()
            .copied()
            .filter(|slot| {
                let e = &self.written[slot];
                window.contains(window.pick(e.times))
            })
            .collect();
        let mut items = Vec::with_capacity(limit.min(seeded + tail.len()));
        if offset < seeded {
            let mut slot = self.seeded_nth(lo, offset);
            while items.len() < limit && slot < hi {
                if !self.touched.contains(&slot) {
                    items.push(Item::Seeded(slot));
                }
                slot += 1;
            }
        }
        let skip = offset.saturating_sub(seeded);
        for slot in tail.iter().skip(skip) {
            if items.len() >= limit {
                break;
            }
            if let Some(Entry {
                record: Some(r), ..
            }) = self.written.get(slot)
            {
                items.push(Item::Stored(r.clone()));
            }
        }
        Page {
            total: seeded + tail.len(),
            items,
            spec: self.spec,
            ctx: self.ctx.clone(),
            rendered: self.rendered.clone(),
        }
    }

    /// Like [`Table::page`] with a further test on each record; it has to
    /// generate every record in the window, so it is for small tables and
    /// lookups, not bulk reads.
    pub fn page_where(
        &self,
        window: &Window,
        offset: usize,
        limit: usize,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Page {
        let all = self.page(window, 0, usize::MAX);
        let (spec, ctx, rendered) = (all.spec, all.ctx.clone(), all.rendered.clone());
        let matching: Vec<Value> = all.records().into_iter().filter(|r| keep(r)).collect();
        Page {
            total: matching.len(),
            items: matching
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(Item::Stored)
                .collect(),
            spec,
            ctx,
            rendered,
        }
    }

    /// Every live record, in natural order.
    pub fn all(&self) -> Vec<Value> {
        self.page(&Window::default(), 0, usize::MAX).records()
    }

    /// The written records, for a state file.
    pub fn save(&self) -> Value {
        let mut slots: Vec<_> = self.written.iter().collect();
        slots.sort_by_key(|(slot, _)| **slot);
        let written: Vec<Value> = slots
            .into_iter()
            .map(|(slot, e)| {
                json!({
                    "slot": slot,
                    "seq": e.seq,
                    "created": e.times.created,
                    "updated": e.times.updated,
                    "record": e.record,
                })
            })
            .collect();
        json!({ "next": self.next, "written": written })
    }

    /// Replay a state file's written records; `relink` rewrites links that
    /// carry the address of the emulator that saved them.
    pub fn load(&mut self, saved: &Value, relink: &dyn Fn(Value) -> Value) -> Result<(), String> {
        let entries = saved
            .get("written")
            .and_then(Value::as_array)
            .ok_or("a table without `written`")?;
        let mut sorted: Vec<(u64, usize, Times, Option<Value>)> = Vec::new();
        for e in entries {
            let num = |k: &str| {
                e.get(k)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| format!("a written record without `{k}`"))
            };
            let times = Times {
                created: num("created")?,
                updated: num("updated")?,
            };
            let record = e.get("record").filter(|r| !r.is_null()).cloned();
            sorted.push((num("seq")? as u64, num("slot")? as usize, times, record));
        }
        sorted.sort_by_key(|e| e.0);
        for (seq, slot, times, record) in sorted {
            match record {
                Some(r) => self.put(slot, relink(r), times, seq),
                None => self.remove(slot, seq, times.updated),
            }
        }
        if let Some(next) = saved.get("next").and_then(Value::as_u64) {
            self.next = self.next.max(next as usize);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_to_their_slot() {
        for slot in [0usize, 1, 2, 999, 1_000_000, 123_456_789] {
            let id = uuid(7, salt("x"), slot);
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4");
            assert_eq!(uuid_slot(7, salt("x"), &id), Some(slot));
            assert_eq!(uuid_slot(8, salt("x"), &id), None);
            assert_eq!(uuid_slot(7, salt("y"), &id), None);
        }
    }

    #[test]
    fn seeded_times_rise_with_the_slot_and_end_before_the_clock() {
        for n in [1usize, 7, 1000, 2_000_000] {
            let ctx = Ctx::new(System::MoySklad, 1, n, String::new());
            let mut last = Times {
                created: 0,
                updated: 0,
            };
            let mut slots: Vec<usize> = (0..n).step_by((n / 500).max(1)).chain([n - 1]).collect();
            slots.dedup();
            for slot in slots {
                let t = ctx.seeded_times("e", slot, 1);
                assert!(t.created < t.updated);
                assert!(slot == 0 || (t.created > last.created && t.updated > last.updated));
                assert!(t.updated < ctx.epoch());
                last = t;
            }
        }
    }
}
