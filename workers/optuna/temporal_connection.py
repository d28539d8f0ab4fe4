"""How the Optuna worker reaches Temporal the way the TypeScript side does (infra/temporal-security.ts).

The same environment variables: TEMPORAL_TLS, TEMPORAL_TLS_CERT / _KEY / _CA (a path or the PEM
itself, `\\n` escapes allowed), TEMPORAL_TLS_SERVER_NAME, TEMPORAL_API_KEY (implies TLS), and
TEMPORAL_ENCRYPTION_KEYS (`id:BASE64[,id:BASE64...]`, the last one encrypts): the payload codec
of infra/payload-codec.ts (AES-256-GCM over the protobuf-serialised payload; data = IV(12) |
ciphertext | tag(16); additional data `binary/encrypted\\n<key id>`; metadata `encoding:
binary/encrypted` and `encryption-key-id`), with failure messages encoded as the TypeScript
workers encode them (infra/failure-converter.ts: encodeCommonAttributes). The configuration's
checks (a certificate without its key, a remote cluster without keys...) stay on the TypeScript
side; this module only applies what it is given.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from typing import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import TLSConfig
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
IV_BYTES = 12
KEY_BYTES = 32
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


class AesGcmPayloadCodec(PayloadCodec):
    """infra/payload-codec.ts's codec: the newest key encrypts, any listed key decrypts, plain payloads pass."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("the payload codec needs at least one key")
        self.by_id = {key_id: AESGCM(key) for key_id, key in keys}
        self.newest = keys[-1][0]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypts each payload with the newest key."""
        out = []
        for p in payloads:
            iv = os.urandom(IV_BYTES)
            body = self.by_id[self.newest].encrypt(iv, p.SerializeToString(), additional_data(self.newest))
            out.append(Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: self.newest.encode()}, data=iv + body))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypts the encrypted payloads; a key we lack or a failed authentication raises."""
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCRYPTED_ENCODING:
                out.append(p)
                continue
            key_id = p.metadata.get(KEY_ID_METADATA, b"").decode()
            aes = self.by_id.get(key_id)
            if aes is None:
                raise ValueError(f"a payload is encrypted with key {key_id!r}, which is not among the configured keys ({', '.join(self.by_id)}): add it to TEMPORAL_ENCRYPTION_KEYS")
            plain = aes.decrypt(p.data[:IV_BYTES], p.data[IV_BYTES:], additional_data(key_id))
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


def additional_data(key_id: str) -> bytes:
    """The authenticated data of a payload encrypted with `key_id`."""
    return ENCRYPTED_ENCODING + b"\n" + key_id.encode()


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`id:BASE64[,id:BASE64...]` (base64 or base64url, 32 bytes each), oldest first."""
    keys = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        key_id, sep, material = entry.partition(":")
        if not sep or not key_id:
            raise SystemExit("optuna-worker: TEMPORAL_ENCRYPTION_KEYS: expected id:BASE64[,id:BASE64...]")
        try:
            key = base64.b64decode(material.replace("-", "+").replace("_", "/") + "=" * (-len(material) % 4), validate=True)
        except binascii.Error:
            raise SystemExit(f"optuna-worker: TEMPORAL_ENCRYPTION_KEYS: the key {key_id!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise SystemExit(f"optuna-worker: TEMPORAL_ENCRYPTION_KEYS: the key {key_id!r} has {len(key)} bytes, not {KEY_BYTES}")
        keys.append((key_id, key))
    return keys


def pem(variable: str, value: str) -> bytes:
    """A PEM given inline (with `\\n` escapes, perhaps) or the contents of the file it names."""
    if "-----BEGIN " in value:
        return (value if "\n" in value else value.replace("\\n", "\n")).encode()
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as err:
        raise SystemExit(f"optuna-worker: {variable}: cannot read {value}: {err.strerror}") from None


def tls_config(env: Mapping[str, str]) -> TLSConfig | None:
    """TLS as infra/temporal-security.ts decides it: asked for by TEMPORAL_TLS, an API key or any TLS setting."""
    flag = (env.get("TEMPORAL_TLS") or "").lower()
    tls_vars = ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME")
    if flag in FALSE or not (flag in TRUE or env.get("TEMPORAL_API_KEY") or any(env.get(v) for v in tls_vars)):
        return None
    cert, key, ca = (env.get(v) for v in ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA"))
    return TLSConfig(
        server_root_ca_cert=pem("TEMPORAL_TLS_CA", ca) if ca else None,
        client_cert=pem("TEMPORAL_TLS_CERT", cert) if cert and key else None,
        client_private_key=pem("TEMPORAL_TLS_KEY", key) if cert and key else None,
        domain=env.get("TEMPORAL_TLS_SERVER_NAME") or None,
    )


def data_converter(env: Mapping[str, str]) -> DataConverter:
    """The default converter, with the payload codec and encoded failure attributes when keys are set."""
    keys_text = env.get("TEMPORAL_ENCRYPTION_KEYS")
    if not keys_text or (env.get("TEMPORAL_ENCRYPTION") or "").lower() in FALSE:
        return DataConverter.default
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=AesGcmPayloadCodec(parse_keys(keys_text)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
