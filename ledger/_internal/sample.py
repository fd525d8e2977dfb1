"""Sample attestations for ``make run`` and the benchmarks: real DSSE envelopes, Ed25519-signed.

Each is an in-toto Statement v1 with a SLSA Provenance v1 predicate for one build of a made-up
artifact. The signing key is generated fresh each time: these are samples, not evidence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sample_envelopes(count: int, key: ed25519.Ed25519PrivateKey | None = None) -> list[bytes]:
    """``count`` distinct signed envelopes describing builds 0..count-1."""
    key = key or ed25519.Ed25519PrivateKey.generate()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        artifact = f"example-app-1.{i}.0.tar.gz"
        began = start + timedelta(minutes=7 * i)
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {
                    "name": artifact,
                    "digest": {"sha256": hashlib.sha256(artifact.encode()).hexdigest()},
                }
            ],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://example.com/ci/build@v1",
                    "externalParameters": {
                        "repository": "https://git.example.com/app",
                        "ref": "refs/heads/main",
                    },
                    "resolvedDependencies": [
                        {
                            "uri": "pkg:pypi/requests@2.31.0",
                            "digest": {"sha256": hashlib.sha256(b"requests").hexdigest()},
                        },
                        {
                            "uri": "git+https://git.example.com/app",
                            "digest": {
                                "gitCommit": hashlib.sha1(
                                    str(i).encode(), usedforsecurity=False
                                ).hexdigest()
                            },
                        },
                    ],
                },
                "runDetails": {
                    "builder": {"id": "https://ci.example.com/runners/linux"},
                    "metadata": {
                        "invocationId": f"https://ci.example.com/runs/{1000 + i}",
                        "startedOn": began.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "finishedOn": (began + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                },
            },
        }
        payload = json.dumps(statement, sort_keys=True).encode()
        sig = key.sign(_pae(PAYLOAD_TYPE, payload))
        env = {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "sample-builder", "sig": base64.b64encode(sig).decode()}],
        }
        out.append(json.dumps(env).encode())
    return out


def main() -> None:
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    target.mkdir(parents=True, exist_ok=True)
    for i, env in enumerate(sample_envelopes(count)):
        (target / f"build-{i}.dsse.json").write_bytes(env)


if __name__ == "__main__":
    main()
