"""Test peer for S3 client-side encryption interop: the Python S3 Encryption
Client (amazon-s3-encryption-client-python 4.0.0), offline.

The package ships only a KMS keyring; this harness adds raw AES-GCM and
RSA-OAEP-SHA1 keyrings on its S3Keyring base class, written after the Java
client's AesKeyring and RsaKeyring, and runs the package's own content
encryption (PutEncryptedObjectPipeline) and decryption
(GetEncryptedObjectPipeline, instruction files through a stub S3 client that
does what the package's plugin does: parse_instruction_file on the body).

Usage (all files are paths; metadata files are JSON objects of strings):
  peer.py encrypt --key SPEC --format v3|v2 --in PLAIN --body OUT
                  --meta OUT.json [--instruction OUT.json] [--matdesc JSON]
  peer.py decrypt --key SPEC --body IN --meta IN.json [--instruction IN.json] --out PLAIN
  peer.py put --key SPEC --endpoint URL --bucket B --object K --in PLAIN [--part-size N]
  peer.py get --key SPEC --endpoint URL --bucket B --object K --out PLAIN
                the package's own client (S3EncryptionClient over boto3)
                against an S3-API server, V3 with metadata in the object:
                `put` is its upload_file (multipart in parts of N bytes,
                default 8 MiB, two parts in memory at a time); `get` is its
                get_object, which authenticates before it releases anything
                and so holds the whole object in memory. Credentials and
                region from the usual AWS_* variables.
KEY SPEC: aes:HEX | rsa:PEM-PATH.
  peer.py serve: one command per line on stdin, as a JSON list of the
                arguments above; one JSON line back per command:
                {"status": 0} or {"status": 3, "error": "..."} (saves
                starting Python per object).
Exit status: 0 done, 3 refused (the package raised), 2 usage.
"""

import argparse
import base64
import io
import json
import os
import sys

from botocore.response import StreamingBody
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from s3_encryption.exceptions import S3EncryptionClientError
from s3_encryption.instruction_file import parse_instruction_file
from s3_encryption.instruction_file_config import InstructionFileConfig
from s3_encryption.materials.crypto_materials_manager import DefaultCryptoMaterialsManager
from s3_encryption.materials.encrypted_data_key import EncryptedDataKey
from s3_encryption.materials.keyring import S3Keyring
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy
from s3_encryption.pipelines import GetEncryptedObjectPipeline, PutEncryptedObjectPipeline

V3 = AlgorithmSuite.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY
V2 = AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF


def binding(v3):
    # Java: ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY.idAsString() for V3,
    # ALG_AES_256_GCM_IV12_TAG16_NO_KDF.cipherName() for V2.
    return b"115" if v3 else b"AES/GCM/NoPadding"


class RawKeyringBase(S3Keyring):
    """Shared parts. The package's decryption materials carry no algorithm
    suite while the keyring runs, so the harness tells the keyring which
    format the object is (from its metadata) through `v3`."""

    def __init__(self, v3):
        self.v3 = v3

    def on_encrypt(self, enc_materials):
        enc_materials = super().on_encrypt(enc_materials)
        data_key = os.urandom(32)
        v3 = enc_materials.encryption_algorithm == V3
        enc_materials.plaintext_data_key = data_key
        enc_materials.encrypted_data_key = EncryptedDataKey(
            key_provider_info=self.WRAP, key_provider_id=b"S3Keyring", encrypted_data_key=self.wrap(data_key, v3)
        )
        return enc_materials

    def on_decrypt(self, dec_materials, encrypted_data_keys=None):
        dec_materials = super().on_decrypt(dec_materials, encrypted_data_keys)
        edk = (encrypted_data_keys or dec_materials.encrypted_data_keys)[0]
        if edk.key_provider_info != self.WRAP:
            raise S3EncryptionClientError(f"not this keyring's wrapping algorithm: {edk.key_provider_info}")
        dec_materials.plaintext_data_key = self.unwrap(edk.encrypted_data_key, self.v3)
        return dec_materials


class AesGcmKeyring(RawKeyringBase):
    """Java AesKeyring, AES/GCM strategy: EDK = IV(12) || AES-GCM(key, AAD = binding)."""

    WRAP = "AES/GCM"

    def __init__(self, key, v3):
        super().__init__(v3)
        self.key = key

    def wrap(self, data_key, v3):
        iv = os.urandom(12)
        return iv + AESGCM(self.key).encrypt(iv, data_key, binding(v3))

    def unwrap(self, edk, v3):
        try:
            return AESGCM(self.key).decrypt(edk[:12], edk[12:], binding(v3))
        except Exception as e:
            raise S3EncryptionClientError(f"AES/GCM unwrap failed: {e!r}") from e


class RsaOaepKeyring(RawKeyringBase):
    """Java RsaKeyring, RSA-OAEP-SHA1 strategy: OAEP(SHA-1, MGF1-SHA1) of
    len(key) (1 byte) || key || binding."""

    WRAP = "RSA-OAEP-SHA1"
    PAD = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)

    def __init__(self, private_key, v3):
        super().__init__(v3)
        self.private_key = private_key

    def wrap(self, data_key, v3):
        return self.private_key.public_key().encrypt(bytes([len(data_key)]) + data_key + binding(v3), self.PAD)

    def unwrap(self, edk, v3):
        try:
            pseudo = self.private_key.decrypt(edk, self.PAD)
        except Exception as e:
            raise S3EncryptionClientError(f"RSA-OAEP-SHA1 unwrap failed: {e!r}") from e
        n = pseudo[0]
        if n not in (16, 24, 32) or pseudo[1 + n:] != binding(v3):
            raise S3EncryptionClientError("the data cipher does not match the one used for encryption")
        return pseudo[1:1 + n]


def keyring(spec, v3):
    kind, _, value = spec.partition(":")
    if kind == "aes":
        return AesGcmKeyring(bytes.fromhex(value), v3)
    if kind == "rsa":
        with open(value, "rb") as f:
            return RsaOaepKeyring(serialization.load_pem_private_key(f.read(), password=None), v3)
    raise SystemExit(2)


class _PluginContext:
    instruction_file_mode = False
    key = None


class StubS3:
    """Serves one instruction file the way the package's plugin does."""

    def __init__(self, instruction):
        self._s3ec_plugin_context = _PluginContext()
        self.instruction = instruction

    def get_object(self, Bucket, Key):
        if self.instruction is None:
            raise S3EncryptionClientError(f"no instruction file {Key}")
        return {"Metadata": parse_instruction_file(self.instruction, Key)}


def encrypt(args):
    v3 = args.format == "v3"
    ring = keyring(args.key, v3)
    pipeline = PutEncryptedObjectPipeline(cmm=DefaultCryptoMaterialsManager(ring), encryption_algorithm=V3 if v3 else V2)
    with open(args.inp, "rb") as f:
        plaintext = f.read()
    matdesc = json.loads(args.matdesc) if args.matdesc else None
    body, meta = pipeline.encrypt(plaintext, encryption_context=matdesc)
    # The package writes KMS fields; a raw keyring writes its own algorithm
    # and the material description where the Java client puts it.
    if v3:
        meta["x-amz-w"] = {"AES/GCM": "02", "RSA-OAEP-SHA1": "22"}[ring.WRAP]
        context = meta.pop("x-amz-t", None)
        if context is not None:
            meta["x-amz-m"] = context
    else:
        meta["x-amz-wrap-alg"] = ring.WRAP
        meta.setdefault("x-amz-matdesc", "{}")
    with open(args.body, "wb") as f:
        f.write(body)
    if args.instruction:
        # The package has no instruction-file writer: split as the Java client does.
        kept = {k: meta.pop(k) for k in ("x-amz-c", "x-amz-d", "x-amz-i") if k in meta} if v3 else {}
        with open(args.instruction, "w") as f:
            json.dump(meta, f)
        meta = kept
    with open(args.meta, "w") as f:
        json.dump(meta, f)


def decrypt(args):
    with open(args.meta) as f:
        meta = json.load(f)
    instruction = None
    if args.instruction:
        with open(args.instruction, "rb") as f:
            instruction = f.read()
    v3 = "x-amz-c" in meta or "x-amz-3" in meta
    ring = keyring(args.key, v3)
    with open(args.body, "rb") as f:
        body = f.read()
    pipeline = GetEncryptedObjectPipeline(
        cmm=DefaultCryptoMaterialsManager(ring),
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
        s3_client=StubS3(instruction),
        instruction_file_config=InstructionFileConfig(),
    )
    response = {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentLength": len(body), "Metadata": meta}
    out = pipeline.decrypt(response, ".instruction", False, bucket="bucket", key="object")
    plaintext = out.read()
    with open(args.out, "wb") as f:
        f.write(plaintext)


def raw_wrap_headers(params, **kwargs):
    """The package labels every V3 EDK it writes as KMS (`x-amz-w` 12, the
    context in `x-amz-t`); a raw keyring writes its own algorithm and the
    material description, as encrypt() does (before-call hook, after the
    package's own)."""
    headers = params.get("headers", {})
    prefix = "x-amz-meta-"
    if headers.get(prefix + "x-amz-w") == "12":
        headers[prefix + "x-amz-w"] = "02"
        context = headers.pop(prefix + "x-amz-t", None)
        if context is not None:
            headers[prefix + "x-amz-m"] = context


def s3_client(args):
    """The package's client over a boto3 client for the server at --endpoint."""
    import boto3
    from botocore.config import Config
    from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig

    # Checksums only where S3 requires them, as hsm-keyring's S3 client does.
    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    plain = boto3.client("s3", endpoint_url=args.endpoint, config=config)
    client = S3EncryptionClient(plain, S3EncryptionClientConfig(keyring=keyring(args.key, True)))
    for event in ("before-call.s3.PutObject", "before-call.s3.CreateMultipartUpload"):
        plain.meta.events.register(event, raw_wrap_headers)
    return client


def put(args):
    part = args.part_size
    s3_client(args).upload_file(
        args.inp, args.bucket, args.object, multipart_threshold=part, multipart_chunksize=part
    )


def get(args):
    body = s3_client(args).get_object(Bucket=args.bucket, Key=args.object)["Body"]
    with open(args.out, "wb") as f:
        for chunk in body.iter_chunks(1 << 20):
            f.write(chunk)


def parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encrypt")
    e.add_argument("--key", required=True)
    e.add_argument("--format", choices=["v3", "v2"], default="v3")
    e.add_argument("--in", dest="inp", required=True)
    e.add_argument("--body", required=True)
    e.add_argument("--meta", required=True)
    e.add_argument("--instruction")
    e.add_argument("--matdesc")
    d = sub.add_parser("decrypt")
    d.add_argument("--key", required=True)
    d.add_argument("--body", required=True)
    d.add_argument("--meta", required=True)
    d.add_argument("--instruction")
    d.add_argument("--out", required=True)
    for name in ("put", "get"):
        c = sub.add_parser(name)
        c.add_argument("--key", required=True)
        c.add_argument("--endpoint", required=True)
        c.add_argument("--bucket", required=True)
        c.add_argument("--object", required=True)
        if name == "put":
            c.add_argument("--in", dest="inp", required=True)
            c.add_argument("--part-size", type=int, default=8 * 1024 * 1024)
        else:
            c.add_argument("--out", required=True)
    sub.add_parser("serve")
    return parser


def run(args):
    """0 when done, else 3 with the package's refusal."""
    try:
        {"encrypt": encrypt, "decrypt": decrypt, "put": put, "get": get}[args.command](args)
        return 0, None
    except Exception as e:  # the package's refusals come as several exception types
        return 3, f"refused: {type(e).__name__}: {e}"


def main():
    args = parser().parse_args()
    if args.command == "serve":
        for line in sys.stdin:
            status, error = run(parser().parse_args(json.loads(line)))
            print(json.dumps({"status": status, "error": error}), flush=True)
        return
    status, error = run(args)
    if error:
        print(error, file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
