//! The binary refuses a bad flag or env var with exit code 64 and a line naming it, before it
//! binds a port or talks to Kubernetes.

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tandem-injector"))
        .args(args)
        .envs(env.iter().copied())
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the binary: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_exit_64_naming_the_flag() {
    for (args, env, needle) in [
        (&["--addr", "nowhere"][..], &[][..], "--addr"),
        (
            &[][..],
            &[("SIDECAR_IMAGE_PULL_POLICY", "Sometimes")][..],
            "--sidecar-image-pull-policy",
        ),
        (
            &["--allowed-service-accounts", "justaname"][..],
            &[][..],
            "--allowed-service-accounts",
        ),
        (&["--no-such-flag"][..], &[][..], "--no-such-flag"),
        (
            &["--sidecar-run-as-non-root", "maybe"][..],
            &[][..],
            "--sidecar-run-as-non-root",
        ),
    ] {
        let (code, stderr) = run(args, env);
        assert_eq!(code, Some(64), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?} {env:?}: {stderr}");
    }
}

#[test]
fn help_exits_0() {
    let (code, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
}
