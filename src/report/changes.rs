//! A plan's `changes` column read in place: each row's list of
//! `{field, before, after}` without exploding the lists into a frame of
//! their own. Counting fields and writing one CSV line per change walk
//! every row; exploding first copied a million-row plan's lists twice.

use polars::prelude::*;
use polars_arrow::array::{Array, ListArray, StructArray, Utf8ViewArray};

/// One change of a row: field, before, after.
pub type Entry<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// The change lists of a `changes` column, by row.
pub struct ChangeLists<'a> {
    lists: &'a ListArray<i64>,
    entries: &'a StructArray,
    field: &'a Utf8ViewArray,
    before: &'a Utf8ViewArray,
    after: &'a Utf8ViewArray,
}

impl<'a> ChangeLists<'a> {
    /// Read `changes`, which must be in one chunk (see
    /// [`ChunkedArray::rechunk`]).
    pub fn new(changes: &'a ListChunked) -> PolarsResult<Self> {
        let bad = |what: &str| polars_err!(ComputeError: "the plan's changes column {what}");
        let lists = changes.downcast_as_array();
        let entries = lists
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| bad("is not a list of structs"))?;
        let member = |name: &str| -> PolarsResult<&'a Utf8ViewArray> {
            let i = entries
                .fields()
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| bad(&format!("has no `{name}`")))?;
            entries.values()[i]
                .as_any()
                .downcast_ref::<Utf8ViewArray>()
                .ok_or_else(|| bad(&format!("has a `{name}` that is not text")))
        };
        Ok(Self {
            lists,
            entries,
            field: member("field")?,
            before: member("before")?,
            after: member("after")?,
        })
    }

    /// The changes of `row`, in order; none for a null list.
    pub fn row(&self, row: usize) -> impl Iterator<Item = Entry<'a>> + use<'a> {
        let (start, end) = if self.lists.is_valid(row) {
            self.lists.offsets().start_end(row)
        } else {
            (0, 0)
        };
        let (entries, field, before, after) = (self.entries, self.field, self.before, self.after);
        (start..end)
            .filter(move |j| entries.is_valid(*j))
            .map(move |j| (field.get(j), before.get(j), after.get(j)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::changes_dtype;

    #[test]
    fn rows_read_back_with_empty_and_null_lists() {
        let entry = |f: &str, b: Option<&str>, a: Option<&str>| {
            StructChunked::from_series(
                "c".into(),
                1,
                [
                    Series::new("field".into(), [f]),
                    Series::new("before".into(), [b]),
                    Series::new("after".into(), [a]),
                    Series::new("baseline".into(), [None::<&str>]),
                ]
                .iter(),
            )
            .unwrap()
            .into_series()
        };
        let two = entry("email", Some("a@x"), Some("b@x"))
            .append(&entry("city", None, Some("Roma")))
            .unwrap()
            .clone();
        let empty = entry("x", None, None).slice(0, 0);
        let rows = [Some(two), None, Some(empty)];
        let list = Series::new("changes".into(), rows)
            .cast(&changes_dtype())
            .unwrap();
        let list = list.list().unwrap().rechunk();
        let c = ChangeLists::new(&list).unwrap();
        assert_eq!(
            c.row(0).collect::<Vec<_>>(),
            vec![
                (Some("email"), Some("a@x"), Some("b@x")),
                (Some("city"), None, Some("Roma"))
            ]
        );
        assert_eq!(c.row(1).count(), 0);
        assert_eq!(c.row(2).count(), 0);
    }
}
