//! The key cascade: links first, then each key in order. A record matched
//! by one key leaves the pool for the next; a key value found more than once
//! on either side makes all its records `duplicate`, never a guess.
//!
//! Each step is one hash pass over the records still in the pools: every
//! key value gets a slot that counts its records on each side. A value with
//! one record on each side pairs them; a value with more than one on either
//! side makes duplicates of all of them. Records are addressed by their row
//! in the prepared frames, so the pools are masks and pairs are positions:
//! the frames are gathered, never joined, afterwards.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use polars::prelude::*;
use polars_arrow::array::Utf8ViewArray;

use super::{A_ID, B_ID, key_column};
use crate::spec::Spec;

/// What matching found.
pub struct Matched {
    /// The matched pairs' rows in the prepared frames, A then B.
    pub rows: [Vec<IdxSize>; 2],
    /// Per pair: `key` (the step that matched it) and `key_value`.
    pub keys: DataFrame,
    /// `side` (`a`/`b`), `id`, `key`, `key_value`, `reason`.
    pub duplicates: DataFrame,
    /// Per side, the rows neither paired nor duplicate.
    pub alone: [BooleanChunked; 2],
}

impl Matched {
    /// How many pairs matched.
    pub fn len(&self) -> usize {
        self.rows[0].len()
    }
}

const NONE: u32 = u32::MAX;

/// One key value's records in the pools.
#[derive(Clone, Copy)]
struct Slot<'a> {
    value: &'a str,
    count: [u32; 2],
    /// The row of the value's first record on each side.
    first: [u32; 2],
}

/// A duplicate record: side, row, step and slot.
struct Dup {
    side: usize,
    row: u32,
    step: usize,
    slot: u32,
}

/// One side's key values for a step, by row.
#[derive(Clone, Copy)]
enum Keys<'a> {
    Column(&'a Utf8ViewArray),
    Links(&'a [Option<String>]),
}

impl<'a> Keys<'a> {
    fn len(&self) -> usize {
        match self {
            Keys::Column(a) => a.len(),
            Keys::Links(l) => l.len(),
        }
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Keys::Column(a) => a.get(row),
            Keys::Links(l) => l[row].as_deref(),
        }
    }
}

/// A row without a key value in the pool.
const NO_KEY: u64 = u64::MAX;

/// One key step's slots, and each pooled row's slot (`NONE` for the rest).
///
/// The values are split by a few bits of their hash into one part per
/// thread of Polars' pool, and each part is indexed on its own thread: a
/// value's records all land in the same part. Slots come out part by part,
/// each part's in the order of the rows.
fn index_step<'a>(
    keys: &[Keys<'a>; 2],
    pool: &[Vec<bool>; 2],
    hasher: &PlRandomState,
) -> (Vec<Slot<'a>>, [Vec<u32>; 2]) {
    use rayon::prelude::*;
    let runtime = &polars_core::runtime::RAYON;
    let parts = runtime
        .current_num_threads()
        .clamp(1, 16)
        .next_power_of_two();
    // Bits away from those hashbrown uses for the bucket and the tag.
    let part = |h: u64| ((h >> 40) as usize) & (parts - 1);
    let hashes: [Vec<u64>; 2] = [0, 1].map(|s| {
        runtime.install(|| {
            (0..keys[s].len())
                .into_par_iter()
                .map(|row| match keys[s].get(row) {
                    Some(v) if pool[s][row] => hasher.hash_one(v).min(NO_KEY - 1),
                    _ => NO_KEY,
                })
                .collect()
        })
    });
    let live = [0, 1].map(|s| hashes[s].iter().filter(|h| **h != NO_KEY).count());
    // A key value usually occurs on both sides, so the larger side's count
    // is a fair first guess of the slots needed.
    let guess = live[0].max(live[1]) / parts + 1;
    let slot_of = [0, 1].map(|s| {
        (0..keys[s].len())
            .map(|_| AtomicU32::new(NONE))
            .collect::<Vec<_>>()
    });
    let found: Vec<Vec<Slot<'a>>> = runtime.install(|| {
        (0..parts)
            .into_par_iter()
            .map(|p| {
                let mut index: HashTable<u32> = HashTable::with_capacity(guess);
                let mut slots: Vec<Slot<'a>> = Vec::with_capacity(guess);
                for s in 0..2 {
                    for (row, &hash) in hashes[s].iter().enumerate() {
                        if hash == NO_KEY || part(hash) != p {
                            continue;
                        }
                        let value = keys[s].get(row).expect("a hashed row has a key");
                        let at = match index.entry(
                            hash,
                            |at| slots[*at as usize].value == value,
                            |at| hasher.hash_one(slots[*at as usize].value).min(NO_KEY - 1),
                        ) {
                            Entry::Occupied(e) => *e.get(),
                            Entry::Vacant(e) => {
                                let at = slots.len() as u32;
                                slots.push(Slot {
                                    value,
                                    count: [0, 0],
                                    first: [NONE, NONE],
                                });
                                e.insert(at);
                                at
                            }
                        };
                        let slot = &mut slots[at as usize];
                        slot.count[s] += 1;
                        if slot.first[s] == NONE {
                            slot.first[s] = row as u32;
                        }
                        slot_of[s][row].store(at, Ordering::Relaxed);
                    }
                }
                slots
            })
            .collect()
    });
    // Number the slots across the parts.
    let mut base = Vec::with_capacity(parts);
    let mut total = 0u32;
    for f in &found {
        base.push(total);
        total += f.len() as u32;
    }
    let slot_of = [0, 1].map(|s| {
        slot_of[s]
            .iter()
            .zip(&hashes[s])
            .map(|(at, &hash)| match at.load(Ordering::Relaxed) {
                NONE => NONE,
                at => base[part(hash)] + at,
            })
            .collect()
    });
    (found.into_iter().flatten().collect(), slot_of)
}

/// Match the prepared frames `a` and `b` through `links` (A id, B id) and
/// the spec's keys. `pool` says, per side, which rows may match at all.
pub fn cascade(
    spec: &Spec,
    a: &DataFrame,
    b: &DataFrame,
    pool: [Vec<bool>; 2],
    links: &[(String, String)],
) -> PolarsResult<Matched> {
    let frames = [a, b];
    let ids = [a.column(A_ID)?.str()?, b.column(B_ID)?.str()?];
    let link_values = link_keys(links, &ids);
    // Each step's name, and its key columns (None: the links).
    let mut steps: Vec<(String, Option<usize>)> = Vec::new();
    if !links.is_empty() {
        steps.push(("link".into(), None));
    }
    for (i, k) in spec.keys.iter().enumerate() {
        steps.push((k.name.clone(), Some(i)));
    }

    // The key values, each side's in one piece so that rows can be read
    // by position from several threads.
    let mut key_columns: Vec<[StringChunked; 2]> = Vec::with_capacity(spec.keys.len());
    for i in 0..spec.keys.len() {
        let column = |s: usize| -> PolarsResult<StringChunked> {
            let c = frames[s].column(&key_column(["a", "b"][s], i))?.str()?;
            Ok(c.rechunk().into_owned())
        };
        key_columns.push([column(0)?, column(1)?]);
    }
    let mut pool = pool;
    let mut pair_rows: [Vec<IdxSize>; 2] = [Vec::new(), Vec::new()];
    let mut pair_step: Vec<(usize, &str)> = Vec::new();
    let mut dups: Vec<Dup> = Vec::new();
    // The slots of ambiguous key values, by step and slot, for the reasons.
    let mut ambiguous: PlHashMap<(usize, u32), Slot> = PlHashMap::new();
    let hasher = PlRandomState::default();
    for (step, (_, source)) in steps.iter().enumerate() {
        let keys: [Keys; 2] = match source {
            None => [0, 1].map(|s| Keys::Links(&link_values[s])),
            Some(i) => key_columns[*i]
                .each_ref()
                .map(|c| Keys::Column(c.downcast_as_array())),
        };
        let (slots, slot_of) = index_step(&keys, &pool, &hasher);
        for s in 0..2 {
            for (row, at) in slot_of[s].iter().enumerate() {
                if *at == NONE {
                    continue;
                }
                let slot = &slots[*at as usize];
                if slot.count[0] > 1 || slot.count[1] > 1 {
                    ambiguous.entry((step, *at)).or_insert(*slot);
                    dups.push(Dup {
                        side: s,
                        row: row as u32,
                        step,
                        slot: *at,
                    });
                    pool[s][row] = false;
                }
            }
        }
        for slot in &slots {
            if slot.count == [1, 1] {
                for s in 0..2 {
                    pair_rows[s].push(slot.first[s] as IdxSize);
                    pool[s][slot.first[s] as usize] = false;
                }
                pair_step.push((step, slot.value));
            }
        }
    }

    // Pairs in the order of side A's rows: the plan lists them so, and the
    // sides' values are then gathered reading side A front to back.
    let (pair_rows, pair_step) = in_order_of_a(pair_rows, pair_step, a.height());
    // Two columns of a text per pair, built side by side.
    let (key, key_value) = polars_core::runtime::RAYON.join(
        || {
            let names: Vec<&str> = pair_step
                .iter()
                .map(|(s, _)| steps[*s].0.as_str())
                .collect();
            Column::new("key".into(), names)
        },
        || {
            let values: Vec<&str> = pair_step.iter().map(|(_, v)| *v).collect();
            Column::new("key_value".into(), values)
        },
    );
    let keys = DataFrame::new_infer_height(vec![key, key_value])?;
    let duplicates = duplicates(spec, &steps, &ambiguous, &dups, &ids)?;
    let mut alone = pool.map(|p| vec![true; p.len()]);
    for s in 0..2 {
        for r in &pair_rows[s] {
            alone[s][*r as usize] = false;
        }
    }
    for d in &dups {
        alone[d.side][d.row as usize] = false;
    }
    Ok(Matched {
        rows: pair_rows,
        keys,
        duplicates,
        alone: alone.map(|v| BooleanChunked::from_slice("alone".into(), &v)),
    })
}

/// The pairs (rows of A and B, and what each pair carries) sorted by their
/// row in A, which is unique to a pair: a counting pass over A's rows.
fn in_order_of_a<T: Copy>(
    rows: [Vec<IdxSize>; 2],
    carried: Vec<T>,
    height: usize,
) -> ([Vec<IdxSize>; 2], Vec<T>) {
    let mut at = vec![NONE; height];
    for (pair, row) in rows[0].iter().enumerate() {
        at[*row as usize] = pair as u32;
    }
    let order: Vec<usize> = at
        .into_iter()
        .filter(|p| *p != NONE)
        .map(|p| p as usize)
        .collect();
    debug_assert_eq!(order.len(), rows[0].len(), "a row of A is in one pair");
    (
        rows.map(|r| order.iter().map(|p| r[*p]).collect()),
        order.iter().map(|p| carried[*p]).collect(),
    )
}

/// The link step's key per row: the link itself (`a id`, `b id`) where the
/// record's id is in exactly one link. An id in several links takes none,
/// so that the cascade's keys decide instead of a guess between links.
fn link_keys(links: &[(String, String)], ids: &[&StringChunked; 2]) -> [Vec<Option<String>>; 2] {
    if links.is_empty() {
        return [Vec::new(), Vec::new()];
    }
    [0, 1].map(|s| {
        let mut by_id: PlHashMap<&str, (u32, &(String, String))> = PlHashMap::new();
        for l in links {
            let id = if s == 0 { l.0.as_str() } else { l.1.as_str() };
            by_id.entry(id).or_insert((0, l)).0 += 1;
        }
        ids[s]
            .iter()
            .map(|id| match id.and_then(|id| by_id.get(id)) {
                Some((1, (x, y))) => Some(format!("{x}\u{1f}{y}")),
                _ => None,
            })
            .collect()
    })
}

/// The duplicates frame, with a reason per ambiguous key value that says how
/// often it occurs on each side and lists the ids.
fn duplicates(
    spec: &Spec,
    steps: &[(String, Option<usize>)],
    ambiguous: &PlHashMap<(usize, u32), Slot>,
    dups: &[Dup],
    ids: &[&StringChunked; 2],
) -> PolarsResult<DataFrame> {
    let names = [&spec.sides[0].name, &spec.sides[1].name];
    let mut listed: PlHashMap<(usize, u32), [Vec<&str>; 2]> = PlHashMap::new();
    for d in dups {
        let id = ids[d.side].get(d.row as usize).unwrap_or("");
        listed.entry((d.step, d.slot)).or_default()[d.side].push(id);
    }
    let mut reasons: PlHashMap<(usize, u32), String> = PlHashMap::with_capacity(listed.len());
    for ((step, at), mut list) in listed {
        let slot = &ambiguous[&(step, at)];
        let mut text = format!("{} `{}` occurs ", steps[step].0, slot.value);
        for s in 0..2 {
            if s == 1 {
                text.push_str(" and ");
            }
            text.push_str(&format!("{}x in {}", slot.count[s], names[s]));
            if slot.count[s] > 0 {
                list[s].sort_unstable();
                text.push_str(&format!(" ({})", list[s].join(", ")));
            }
        }
        reasons.insert((step, at), text);
    }
    let mut side = Vec::with_capacity(dups.len());
    let mut id = Vec::with_capacity(dups.len());
    let mut key = Vec::with_capacity(dups.len());
    let mut value = Vec::with_capacity(dups.len());
    let mut reason = Vec::with_capacity(dups.len());
    for d in dups {
        side.push(["a", "b"][d.side]);
        id.push(ids[d.side].get(d.row as usize));
        key.push(steps[d.step].0.as_str());
        value.push(ambiguous[&(d.step, d.slot)].value);
        reason.push(reasons.get(&(d.step, d.slot)).map(|r| r.as_str()));
    }
    DataFrame::new_infer_height(vec![
        Column::new("side".into(), side),
        Column::new("id".into(), id),
        Column::new("key".into(), key),
        Column::new("key_value".into(), value),
        Column::new("reason".into(), reason),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let text = r#"
name = "t"
entity = "customers"
direction = "crm -> erp"
[side.crm]
file = "a.csv"
id = "id"
[side.erp]
file = "b.csv"
id = "id"
[[field]]
name = "email"
path = { crm = "email", erp = "email" }
[[key]]
fields = ["email"]
"#;
        Spec::parse(std::path::Path::new("t.toml"), text).expect("valid spec")
    }

    fn frame(p: &str, ids: &[&str], keys: &[Option<&str>]) -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new(format!("{p}_id").into(), ids),
            Column::new(key_column(p, 0).into(), keys),
        ])
        .expect("frame")
    }

    fn pairs(m: &Matched, a: &DataFrame, b: &DataFrame) -> Vec<(String, String, String)> {
        let id = |df: &DataFrame, c: &str, r: IdxSize| {
            df.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(r as usize)
                .unwrap()
                .to_string()
        };
        let keys = m.keys.column("key").unwrap().str().unwrap();
        let mut out: Vec<_> = (0..m.len())
            .map(|i| {
                (
                    id(a, A_ID, m.rows[0][i]),
                    id(b, B_ID, m.rows[1][i]),
                    keys.get(i).unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn an_id_in_two_links_is_matched_by_the_keys() {
        let a = frame("a", &["a1", "a2"], &[Some("x@y"), None]);
        let b = frame("b", &["b1", "b2", "b3"], &[None, Some("x@y"), None]);
        let links = [
            ("a1".to_string(), "b1".to_string()),
            ("a1".to_string(), "b2".to_string()),
            ("a2".to_string(), "b3".to_string()),
        ];
        let m = cascade(&spec(), &a, &b, [vec![true; 2], vec![true; 3]], &links).unwrap();
        assert_eq!(
            pairs(&m, &a, &b),
            vec![
                ("a1".into(), "b2".into(), "email".into()),
                ("a2".into(), "b3".into(), "link".into()),
            ]
        );
        let alone: Vec<_> = m.alone[1].iter().collect();
        assert_eq!(alone, vec![Some(true), Some(false), Some(false)]);
    }

    #[test]
    fn pairs_come_in_the_order_of_side_a() {
        let a = frame(
            "a",
            &["a0", "a1", "a2", "a3"],
            &[Some("w"), Some("x"), Some("y"), Some("z")],
        );
        let b = frame(
            "b",
            &["b0", "b1", "b2", "b3"],
            &[Some("z"), Some("y"), Some("x"), Some("w")],
        );
        let links = [("a2".to_string(), "b1".to_string())];
        let m = cascade(&spec(), &a, &b, [vec![true; 4], vec![true; 4]], &links).unwrap();
        assert_eq!(m.rows[0], [0, 1, 2, 3]);
        assert_eq!(m.rows[1], [3, 2, 1, 0]);
        let keys: Vec<_> = m
            .keys
            .column("key")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            keys,
            [Some("email"), Some("email"), Some("link"), Some("email")]
        );
    }

    #[test]
    fn rows_outside_the_pool_neither_match_nor_count() {
        // a2 is filtered out: x@y then occurs once per side and pairs.
        let a = frame("a", &["a1", "a2"], &[Some("x@y"), Some("x@y")]);
        let b = frame("b", &["b1"], &[Some("x@y")]);
        let m = cascade(&spec(), &a, &b, [vec![true, false], vec![true]], &[]).unwrap();
        assert_eq!(
            pairs(&m, &a, &b),
            vec![("a1".into(), "b1".into(), "email".into())]
        );
        assert_eq!(m.duplicates.height(), 0);
        let alone: Vec<_> = m.alone[0].iter().collect();
        assert_eq!(alone, vec![Some(false), Some(true)]);
    }
}
