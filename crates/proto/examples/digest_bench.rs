//! Cost of the server's Digest check per request (nonce HMAC, HA2 and response hash,
//! constant-time compare, nonce-count table): `cargo run --release -p ipcamd-proto
//! --example digest_bench`. Prints microseconds per verification for MD5 and SHA-256.

use std::time::Instant;

use ipcamd_proto::auth::{
    digest_response, ha1, Algorithm, DigestServer, NonceCounts, NonceSigner, StoredHashes, Verdict,
};

fn main() {
    let server = DigestServer {
        realm: "ipcamd".into(),
        signer: NonceSigner::new([3; 32], 300),
        allow_rfc2069: true,
    };
    let stored = StoredHashes {
        md5: Some(ha1(Algorithm::Md5, "alice", "ipcamd", "secret")),
        sha256: Some(ha1(Algorithm::Sha256, "alice", "ipcamd", "secret")),
    };
    let uri = "rtsp://127.0.0.1:8554/cam1/trackID=0";
    let now = 1_800_000_000;
    const N: u32 = 200_000;
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let nonce = server.signer.make(now, [1; 8]);
        let h = ha1(alg, "alice", "ipcamd", "secret");
        // Answers prepared beforehand: only the server's work is timed.
        let answers: Vec<String> = (1..=N)
            .map(|nc| {
                let nc = format!("{nc:08x}");
                let r = digest_response(alg, &h, &nonce, "SETUP", uri, Some(("auth", &nc, "c")));
                format!(
                    "Digest username=\"alice\", realm=\"ipcamd\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c\"",
                    alg.name()
                )
            })
            .collect();
        let mut counts = NonceCounts::default();
        let t = Instant::now();
        let mut ok = 0u32;
        for a in &answers {
            let v = server.verify(a, "SETUP", uri, now, false, &mut counts, |_| {
                Some(stored.clone())
            });
            ok += u32::from(matches!(v, Verdict::Authenticated { .. }));
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / f64::from(N);
        assert_eq!(ok, N, "every answer must verify");
        println!(
            "{}: {per:.2} µs per verified request ({N} requests)",
            alg.name()
        );
    }
    let t = Instant::now();
    for i in 0..N {
        std::hint::black_box(server.challenges(now, (i as u64).to_le_bytes(), false, false));
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    println!("401 challenges (nonce + 2 header values): {per:.2} µs each");
}
