//! Duplicates: an employee ID or email address (in any case) on more than one row. Every row
//! holding one is skipped, and its XID held, since which row is the person cannot be known;
//! unless `policy.duplicate_xids: merge` reads the rows of one employee ID as one person's
//! contracts ([`super::contracts`]).

use std::borrow::Cow;
use std::hash::BuildHasher;

use foldhash::HashMap;

use crate::fields::FieldName;
use crate::hr::{Layout, Record, Records, case_folded};

/// The employee IDs and email addresses on more than one row, with the lines of those rows.
pub(super) struct Duplicates<'r> {
    xids: HashMap<&'r str, Vec<u64>>,
    emails: HashMap<Cow<'r, str>, Vec<u64>>,
    /// The records' indexes in XID order: repeated IDs are found side by side in it, and the
    /// desired users take their order from it rather than sort again.
    xid_order: Vec<u32>,
}

impl<'r> Duplicates<'r> {
    /// With `merging`, rows of one employee ID are one person's contracts: their shared address
    /// is a duplicate only when another employee ID has it too. With `parallel`, the IDs and the
    /// addresses are searched side by side on two threads.
    pub fn find(
        records: &'r Records,
        layout: &Layout,
        merging: bool,
        parallel: bool,
    ) -> Duplicates<'r> {
        let slot = |field| {
            layout
                .slot(&field)
                .expect("xid and email are always configured")
        };
        let (xid, email) = (slot(FieldName::Xid), slot(FieldName::Email));
        // Merging, the rows of one employee ID are one person.
        let person = merging.then_some(xid);
        let emails = || repeated_emails(records, email, person);
        let ((xid_order, xids), emails) = if parallel {
            std::thread::scope(|scope| {
                let emails = scope.spawn(emails);
                let xids = sorted_by_xid(records, xid);
                let emails = emails.join();
                (
                    xids,
                    emails.unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                )
            })
        } else {
            (sorted_by_xid(records, xid), emails())
        };
        Duplicates {
            xids,
            emails,
            xid_order,
        }
    }

    /// The lines of an employee ID on several rows.
    pub fn xid(&self, xid: &str) -> Option<&[u64]> {
        self.xids.get(xid).map(Vec::as_slice)
    }

    /// The lines of an email address on several rows (in any case).
    pub fn email(&self, email: &str) -> Option<&[u64]> {
        // Most exports repeat no address: then folding the case of each would be wasted.
        if self.emails.is_empty() {
            return None;
        }
        self.emails
            .get(case_folded(email).as_ref())
            .map(Vec::as_slice)
    }

    /// The records' indexes in XID order (the record order among equal XIDs).
    pub fn xid_order(&self) -> &[u32] {
        &self.xid_order
    }
}

/// The records' indexes in XID order, and the XIDs (other than empty ones) on more than one
/// record with the lines of those records in order.
fn sorted_by_xid(records: &Records, slot: usize) -> (Vec<u32>, HashMap<&str, Vec<u64>>) {
    let count = u32::try_from(records.len()).expect("fewer than 4 billion records");
    let mut order: Vec<(u64, &str, u32)> = (records.iter())
        .map(|r| r.value(slot))
        .zip(0..count)
        .map(|(xid, record)| (leading_bytes(xid), xid, record))
        .collect();
    // A stable sort merges the runs already in order: exports are mostly sorted by ID.
    order.sort();
    let mut repeated: HashMap<&str, Vec<u64>> = HashMap::default();
    for run in order.chunk_by(|a, b| a.1 == b.1) {
        if run.len() > 1 && !run[0].1.is_empty() {
            let lines = (run.iter())
                .map(|&(_, _, r)| records.shared()[r as usize].line)
                .collect();
            repeated.insert(run[0].1, lines);
        }
    }
    (order.into_iter().map(|(_, _, r)| r).collect(), repeated)
}

/// The first eight bytes of `text` as a number that orders as they do (a shorter text padded
/// with zeros, which orders it before the longer texts it begins): the sort compares these
/// first, and reads the texts themselves, scattered over memory, only when they tie.
fn leading_bytes(text: &str) -> u64 {
    let mut bytes = [0; 8];
    let n = text.len().min(8);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// The addresses (other than empty ones; in any case) on more than one record, with the lines
/// of those records in order; with `person` (the slot of the employee ID when rows of one ID
/// are one person), only the addresses of more than one person. Sorted by their hashes, the
/// same addresses lie side by side: a sort of a million small pairs costs less than a map of a
/// million addresses.
fn repeated_emails(
    records: &Records,
    slot: usize,
    person: Option<usize>,
) -> HashMap<Cow<'_, str>, Vec<u64>> {
    let hasher = foldhash::fast::FixedState::default();
    let address = |record: u32| case_folded(records.shared()[record as usize].value(slot));
    let count = u32::try_from(records.len()).expect("fewer than 4 billion records");
    let mut hashed: Vec<(u64, u32)> = (0..count)
        .map(|record| (address(record), record))
        .filter(|(address, _)| !address.is_empty())
        .map(|(address, record)| (hasher.hash_one(address), record))
        .collect();
    hashed.sort_unstable();
    let mut repeated: HashMap<Cow<'_, str>, Vec<u64>> = HashMap::default();
    for run in hashed
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
    {
        // Nearly always one address; two that share a hash are told apart here.
        let mut by_address: HashMap<Cow<'_, str>, Vec<&Record>> = HashMap::default();
        for &(_, record) in run {
            let row = &records.shared()[record as usize];
            by_address.entry(address(record)).or_default().push(row);
        }
        for (address, rows) in by_address {
            let one_person =
                person.is_some_and(|xid| rows.iter().all(|r| r.value(xid) == rows[0].value(xid)));
            if rows.len() > 1 && !one_person {
                repeated.insert(address, rows.iter().map(|r| r.line).collect());
            }
        }
    }
    repeated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_and_addresses_in_any_case_are_found_with_all_their_lines() {
        let layout = Layout::new(vec![
            (FieldName::Xid, "id".into()),
            (FieldName::Email, "mail".into()),
        ]);
        let records = Records::from_rows(
            2,
            [
                (2, vec!["1", "a@x.nl"]),
                (3, vec!["2", "A@X.nl"]),
                (4, vec!["1", "b@x.nl"]),
                (5, vec!["", ""]),
                (6, vec!["", "c@x.nl"]),
                (7, vec!["1", "a@x.NL"]),
            ],
        );
        let duplicates = Duplicates::find(&records, &layout, false, false);
        let parallel = Duplicates::find(&records, &layout, false, true);
        assert_eq!(
            (
                parallel.xid_order(),
                parallel.xid("1"),
                parallel.email("a@x.nl")
            ),
            (
                duplicates.xid_order(),
                duplicates.xid("1"),
                duplicates.email("a@x.nl")
            )
        );
        assert_eq!(duplicates.xid("1"), Some(&[2, 4, 7][..]));
        assert_eq!(duplicates.xid("2"), None);
        assert_eq!(duplicates.xid(""), None);
        assert_eq!(duplicates.email("a@x.nl"), Some(&[2, 3, 7][..]));
        assert_eq!(duplicates.email("A@x.NL"), Some(&[2, 3, 7][..]));
        assert_eq!(duplicates.email("c@x.nl"), None);
        // Merging, the address of one ID's contracts is a duplicate only with another ID's.
        let merging = Duplicates::find(&records, &layout, true, false);
        assert_eq!(merging.email("a@x.nl"), Some(&[2, 3, 7][..]));
        assert_eq!(merging.email("b@x.nl"), None);
        let records = Records::from_rows(2, [(2, vec!["1", "a@x.nl"]), (3, vec!["1", "A@x.nl"])]);
        assert_eq!(
            Duplicates::find(&records, &layout, true, false).email("a@x.nl"),
            None
        );
        assert_eq!(
            Duplicates::find(&records, &layout, false, false).email("a@x.nl"),
            Some(&[2, 3][..])
        );
    }

    proptest::proptest! {
        /// Texts that differ early, late or not at all (one beginning the other), with zero
        /// bytes and characters of several bytes among them.
        #[test]
        fn leading_bytes_order_texts_as_the_texts_do(
            a in "[0\\x00a-c\u{e9}]{0,12}",
            b in "[0\\x00a-c\u{e9}]{0,12}",
        ) {
            proptest::prop_assert_eq!(
                (leading_bytes(&a), &a).cmp(&(leading_bytes(&b), &b)),
                a.cmp(&b)
            );
        }
    }
}
