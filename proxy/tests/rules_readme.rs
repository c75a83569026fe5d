//! README.md's "Interception rules (reference)" is `fedproxy rules plan`'s own
//! output for the shipped configuration: plain (iptables and nft) and with
//! transparent mode. `FEDPROXY_UPDATE_README=1 cargo test --test rules_readme`
//! rewrites the block after a change to the rules.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fedproxy");
const BEGIN: &str = "<!-- rules-reference:begin (generated: FEDPROXY_UPDATE_README=1 cargo test --test rules_readme) -->\n";
const END: &str = "<!-- rules-reference:end -->";

fn plan(config: &Path, shown_as: &str, backend: &str) -> String {
    let o = Command::new(BIN)
        .args(["rules", "plan", "--config"])
        .arg(config)
        .args(["--backend", backend])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .replace(&config.display().to_string(), shown_as)
}

fn reference() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = repo.join("fedproxy.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let transparent = text
        .replace(
            "upstream = \"127.0.0.1:6817\"",
            "upstream = \"192.0.2.10:6817\"",
        )
        .replace("transparent = false", "transparent = true");
    assert_ne!(transparent, text);
    let tfile = std::env::temp_dir().join(format!("fedproxy-readme-{}.toml", std::process::id()));
    std::fs::write(&tfile, transparent).unwrap();
    let shown = "/etc/fedproxy/fedproxy.toml";
    let out = format!(
        "The shipped `/etc/fedproxy/fedproxy.toml`, iptables backend:\n\n```sh\n{}```\n\n\
         The same with the native nftables backend (`--backend nft`):\n\n```sh\n{}```\n\n\
         With `[inbound] upstream = \"192.0.2.10:6817\"` (the head node's address) and \
         `transparent = true`: the mangle chain, the `ip rule` and the local route are added:\n\n```sh\n{}```\n",
        plan(&example, shown, "iptables"),
        plan(&example, shown, "nft"),
        plan(&tfile, shown, "iptables"),
    );
    let _ = std::fs::remove_file(tfile);
    out
}

#[test]
fn readme_rules_reference_is_the_plan_output() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README has the rules-reference block")
        + BEGIN.len();
    let end = readme[start..].find(END).expect("block end") + start;
    let want = reference();
    if std::env::var("FEDPROXY_UPDATE_README").as_deref() == Ok("1") {
        let updated = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&readme_path, updated).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        want,
        "README's rules reference is out of date: FEDPROXY_UPDATE_README=1 cargo test --test rules_readme"
    );
}
