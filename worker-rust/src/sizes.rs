//! Sizes as whirr's command lines read and print them, identical to the Python side
//! (`whirr.cli.server.parse_size` reads, `whirr.worker.run_size.human_bytes` prints):
//! binary units only, so a `1M` here is a `1M` there and a log line reads the same
//! whichever worker wrote it.
#![forbid(unsafe_code)]

/// `20GiB`, `512M`, `1000` -> bytes. Case and blanks around the unit do not matter; the
/// units are B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024). Zero is refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let value = text.trim().to_ascii_uppercase();
    let digits = value.trim_end_matches(|c| "KMGTIB ".contains(c));
    let unit = value[digits.len()..].trim();
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        "T" | "TIB" => 1 << 40,
        _ => 0,
    };
    let bytes = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n >= 1);
    bytes.ok_or_else(|| format!("{text:?} is not a size such as 20GiB"))
}

/// A size option that can be switched off: `off` (any case) is `None`.
pub fn parse_size_or_off(text: &str) -> Result<Option<u64>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_size(text).map(Some)
}

/// `10.0 GiB`, `512.0 KiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    // Dividing by 1024 is exact in binary, and `{:.1}` rounds the exact value half to
    // even as Python's `:.1f` does, so both print the same digits.
    #[allow(clippy::cast_precision_loss)] // as Python's float(n): the same value
    let mut size = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if size < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{size:.0} {unit}")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("TiB ends the loop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_python_parser() {
        let ok = [
            ("1000", 1000),
            ("12B", 12),
            ("64K", 64 << 10),
            ("64kib", 64 << 10),
            (" 1 M ", 1 << 20),
            ("1MiB", 1 << 20),
            ("10GiB", 10 << 30),
            ("2t", 2 << 40),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "0", "0K", "M", "1.5G", "-1", "1KB", "1 PiB", "ten"] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains("is not a size such as 20GiB"), "{err}");
        }
        // Past u64 (16 EiB): refused here, where Python's integers would take it.
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(parse_size_or_off(" OFF "), Ok(None));
        assert_eq!(parse_size_or_off("1G"), Ok(Some(1 << 30)));
    }

    #[test]
    fn sizes_print_like_python_human_bytes() {
        // What whirr.worker.run_size.human_bytes prints for the same numbers.
        let cases = [
            (0, "0 B"),
            (12, "12 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1280, "1.2 KiB"), // 1.25: half to even
            (1331, "1.3 KiB"),
            (64 << 10, "64.0 KiB"),
            (256 << 10, "256.0 KiB"),
            ((1 << 20) - 1, "1024.0 KiB"),
            (1 << 20, "1.0 MiB"),
            (2_883_584, "2.8 MiB"), // 2.75 MiB
            (10 << 30, "10.0 GiB"),
            (5 << 40, "5.0 TiB"),
            (3 << 50, "3072.0 TiB"),
        ];
        for (n, text) in cases {
            assert_eq!(human_bytes(n), text, "{n}");
        }
    }
}
