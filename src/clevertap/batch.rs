//! Packing claimed rows into a delivery and records into requests, within the record and byte caps.

use std::ops::Range;

/// How many of `rows` (given as (records, bytes) each, in queue order) go into one request:
/// whole rows only, at most `max_records` records and `max_bytes` bytes, but never zero rows
/// while rows remain (a single oversized row goes alone).
pub fn rows_that_fit(rows: &[(usize, usize)], max_records: usize, max_bytes: usize) -> usize {
    let (mut records, mut bytes) = (0usize, 0usize);
    for (taken, &(r, b)) in rows.iter().enumerate() {
        let over = records + r > max_records || bytes + b > max_bytes;
        if over && taken > 0 {
            return taken;
        }
        records += r;
        bytes += b;
    }
    rows.len()
}

/// Splits records (given by their byte sizes, in order) into consecutive requests of at most
/// `max_records` records and `max_bytes` bytes each; a single larger record goes alone.
pub fn chunks(sizes: &[usize], max_records: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, &size) in sizes.iter().enumerate() {
        let full = i - start >= max_records.max(1) || bytes + size > max_bytes;
        if full && i > start {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_split_into_requests_within_both_caps() {
        type Case = (&'static str, Vec<usize>, usize, usize, Vec<(usize, usize)>);
        let cases: [Case; 5] = [
            ("one request", vec![10; 4], 10, 100, vec![(0, 4)]),
            (
                "record cap",
                vec![10; 5],
                2,
                1000,
                vec![(0, 2), (2, 4), (4, 5)],
            ),
            ("byte cap", vec![40, 40, 40], 10, 100, vec![(0, 2), (2, 3)]),
            (
                "oversized record alone",
                vec![10, 500, 10],
                10,
                100,
                vec![(0, 1), (1, 2), (2, 3)],
            ),
            ("nothing", vec![], 10, 100, vec![]),
        ];
        for (name, sizes, max_records, max_bytes, expected) in cases {
            let got: Vec<(usize, usize)> = chunks(&sizes, max_records, max_bytes)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn rows_are_packed_within_both_caps() {
        type Case = (&'static str, Vec<(usize, usize)>, usize, usize, usize);
        let cases: [Case; 6] = [
            ("all fit", vec![(1, 100), (1, 100)], 10, 1000, 2),
            ("record cap", vec![(1, 10); 5], 3, 1000, 3),
            ("byte cap", vec![(1, 400), (1, 400), (1, 400)], 10, 1000, 2),
            (
                "oversized first row goes alone",
                vec![(1, 5000), (1, 10)],
                10,
                1000,
                1,
            ),
            (
                "multi-record rows stay whole",
                vec![(2, 10), (2, 10)],
                3,
                1000,
                1,
            ),
            ("nothing", vec![], 10, 1000, 0),
        ];
        for (name, rows, max_records, max_bytes, expected) in cases {
            assert_eq!(
                rows_that_fit(&rows, max_records, max_bytes),
                expected,
                "{name}"
            );
        }
    }
}
