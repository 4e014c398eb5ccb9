//! Packing claimed rows into one request: whole rows, up to the record and byte caps.

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

#[cfg(test)]
mod tests {
    use super::*;

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
