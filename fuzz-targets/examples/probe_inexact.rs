use bytes::Bytes;
use fedproxy_fuzz_targets::{
    frame::framings,
    mutate::{mutate, Rng},
    seeds::Seeds,
};
use slurm_codec::frame::{BodyDecoding, Frame};
fn main() {
    let seeds = Seeds::load();
    let s = &seeds.frame;
    let mut rng = Rng::new(12345);
    let all = framings();
    let mut found = 0;
    for _ in 0..3_000_000 {
        let mut m = s[rng.below(s.len())].clone();
        let o = s[rng.below(s.len())].clone();
        mutate(&mut rng, &mut m, &o, 8192);
        if m.len() < 3 {
            continue;
        }
        let f = all[m[0] as usize % all.len()];
        let raw = Bytes::copy_from_slice(&m[2..]);
        if let Ok(fr) = Frame::decode_hinted(raw.clone(), f, BodyDecoding::All, None) {
            if fr.to_bytes() != raw {
                found += 1;
                if found <= 5 {
                    println!(
                        "{:?} {:?} body_error={:?}\n raw {:02x?}\n enc {:02x?}",
                        f,
                        fr.msg_type(),
                        fr.body_error,
                        &raw[..raw.len().min(80)],
                        &fr.to_bytes()[..fr.to_bytes().len().min(80)]
                    );
                }
            }
        }
    }
    println!("found {found}");
}
