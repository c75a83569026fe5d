//! A small byte-level mutator for the stable runner (no coverage feedback, so
//! the mutations lean on what breaks binary protocols: length fields, counts,
//! versions, truncation, splicing of real frames).

/// xorshift64*: fast, seedable, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const INTERESTING_32: [u32; 12] = [
    0,
    1,
    2,
    6,
    0x7f,
    0xff,
    0xfffe,
    0xffff,
    0x3fff_fff0,
    0x4000_0000,
    0x7fff_ffff,
    0xffff_ffff,
];

/// Applies 1..=4 stacked mutations to `data`, splicing from `other` sometimes;
/// the result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, data, other);
    }
    data.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, d: &mut Vec<u8>, other: &[u8]) {
    let len = d.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            d[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            d[i] = rng.next_u64() as u8;
        }
        2 if len > 0 => {
            let i = rng.below(len);
            d[i] = [0, 1, 0x7f, 0x80, 0xfe, 0xff][rng.below(6)];
        }
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            d.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            d.drain(at..at + n);
        }
        5 if len > 0 => {
            // Duplicate a chunk (repeated frames, repeated list items).
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let chunk = d[at..at + n].to_vec();
            let to = rng.below(len + 1);
            d.splice(to..to, chunk);
        }
        6 if len >= 4 => {
            // A 32-bit big-endian field (length prefix, count, id) set to an edge value.
            let at = rng.below(len - 3);
            let v = if rng.chance(3) {
                let cur = u32::from_be_bytes(d[at..at + 4].try_into().expect("4"));
                cur.wrapping_add(rng.below(17) as u32).wrapping_sub(8)
            } else {
                INTERESTING_32[rng.below(INTERESTING_32.len())]
            };
            d[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        7 if len >= 2 => {
            // A 16-bit field (version, msg_type, flags).
            let at = rng.below(len - 1);
            let v: u16 = [
                0, 0xffff, 0xfffe, 0x2400, 0x2600, 0x2a00, 0x2d00, 0x2e00, 2049, 2050, 1433, 6500,
            ][rng.below(12)];
            d[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        8 if !other.is_empty() => {
            // Splice: our head, the other input's tail.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            d.truncate(cut);
            d.extend_from_slice(&other[from..]);
        }
        9 if len > 0 => {
            d.truncate(rng.below(len));
        }
        10 if len > 1 => {
            // Swap two bytes (little/big endian confusions).
            let (a, b) = (rng.below(len), rng.below(len));
            d.swap(a, b);
        }
        11 if !other.is_empty() => {
            // Insert a piece of the other input (a frame inside a frame).
            let from = rng.below(other.len());
            let n = 1 + rng.below((other.len() - from).min(512));
            let at = rng.below(len + 1);
            d.splice(at..at, other[from..from + n].iter().copied());
        }
        _ => {
            if len > 0 {
                let i = rng.below(len);
                d[i] = d[i].wrapping_add(1);
            }
        }
    }
}
