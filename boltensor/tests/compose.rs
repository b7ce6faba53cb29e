//! docker-compose.yml cannot run here (no container engine), so check offline what can be checked: every
//! boltensor command in it parses with the real binary's arguments, and every variable it uses is
//! documented in docs/deploy.md.

use std::process::Command;

fn compose() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker-compose.yml"
    ))
    .expect("docker-compose.yml at the top level")
}

/// `${NAME:-default}` → default, `${NAME:?msg}` → "x", `${NAME}` → "x".
fn substitute(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing brace") + i;
        let inner = &rest[i + 2..end];
        out.push_str(match inner.split_once(":-") {
            Some((_, default)) => default,
            None => "x",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The `command:` lists of the services, in order.
fn commands(yaml: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut service = String::new();
    let mut in_command = false;
    for line in yaml.lines() {
        if line.starts_with("  ") && !line.starts_with("    ") && line.trim_end().ends_with(':') {
            service = line.trim().trim_end_matches(':').to_owned();
            in_command = false;
        } else if line.trim() == "command:" {
            in_command = true;
            out.push((service.clone(), Vec::new()));
        } else if in_command && line.trim_start().starts_with("- ") {
            let arg = line.trim_start().trim_start_matches("- ").to_owned();
            if let Some((_, args)) = out.last_mut() {
                args.push(substitute(&arg));
            }
        } else if !line.trim().is_empty() {
            in_command = false;
        }
    }
    out
}

#[test]
fn every_boltensor_command_in_compose_parses() {
    let cmds = commands(&compose());
    let ours: Vec<_> = cmds.iter().filter(|(s, _)| s != "bitcoind").collect();
    assert_eq!(
        ours.len(),
        4,
        "miner, validator, client, coordinator: {cmds:?}"
    );
    for (service, args) in ours {
        let out = Command::new(env!("CARGO_BIN_EXE_boltensor"))
            .args(args)
            .arg("--help")
            .output()
            .expect("boltensor runs");
        assert!(
            out.status.success(),
            "service {service}: `boltensor {}` does not parse:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_variable_in_compose_is_documented() {
    let yaml = compose();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deploy.md"))
        .expect("docs/deploy.md");
    let mut rest = yaml.as_str();
    while let Some(i) = rest.find("${") {
        let name: String = rest[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            doc.contains(&name),
            "{name} is used in docker-compose.yml but not in docs/deploy.md"
        );
        rest = &rest[i + 2..];
    }
}
