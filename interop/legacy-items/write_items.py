"""Write items in the legacy DynamoDB Encryption Client format, offline.

Uses the Python package dynamodb-encryption-sdk (its item encryptor, no
DynamoDB) with the wrapped materials provider (AES key wrap, RSA-OAEP) and the
static materials provider, over raw keys (JceNameLocalDelegatedKey). Prints
one JSON object per line: the case, the provider and key names, the keys
(hex, or the PEM file), the table,
the attribute actions, the plaintext item, the stored item and the
peer's own decryption of it (the expected plaintext), all as
DynamoDB JSON (binary values in base64).

The keys are fixed test keys, the same ones the Rust tests use:
  AES-256 wrapping / content key: bytes 0x00..0x1f
  HMAC-SHA256 signing key:        bytes 0x40..0x5f
  RSA key pair:                   tests/data/interop-rsa-2048-private.pem

Usage: python write_items.py RSA_PRIVATE_PEM > items.jsonl
"""
import base64
import json
import sys

from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey
from dynamodb_encryption_sdk.encrypted import CryptoConfig
from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item
from dynamodb_encryption_sdk.identifiers import CryptoAction, EncryptionKeyType, KeyEncodingType
from dynamodb_encryption_sdk.material_providers.static import StaticCryptographicMaterialsProvider
from dynamodb_encryption_sdk.material_providers.wrapped import WrappedCryptographicMaterialsProvider
from dynamodb_encryption_sdk.materials.raw import RawDecryptionMaterials, RawEncryptionMaterials
from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext

TABLE = "legacy-table"
AES_KEY = bytes(range(32))
HMAC_KEY = bytes(range(0x40, 0x60))


def sym(key, algorithm):
    return JceNameLocalDelegatedKey(key, algorithm, EncryptionKeyType.SYMMETRIC, KeyEncodingType.RAW)


def rsa(pem, algorithm):
    return JceNameLocalDelegatedKey(pem, algorithm, EncryptionKeyType.PRIVATE, KeyEncodingType.PEM)


def providers(rsa_pem):
    aes_wrap = sym(AES_KEY, "AES")
    hmac = sym(HMAC_KEY, "HmacSHA256")
    rsa_wrap = rsa(rsa_pem, "RSA")
    rsa_sign = rsa(rsa_pem, "SHA256withRSA")
    aes_content = sym(AES_KEY, "AES")
    yield "wrapped-aes", "aes-wrap", "hmac", WrappedCryptographicMaterialsProvider(
        signing_key=hmac, wrapping_key=aes_wrap, unwrapping_key=aes_wrap
    )
    yield "wrapped-rsa", "rsa-oaep", "rsa-sign", WrappedCryptographicMaterialsProvider(
        signing_key=rsa_sign, wrapping_key=rsa_wrap, unwrapping_key=rsa_wrap
    )
    yield "wrapped-aes-rsa-sign", "aes-wrap", "rsa-sign", WrappedCryptographicMaterialsProvider(
        signing_key=rsa_sign, wrapping_key=aes_wrap, unwrapping_key=aes_wrap
    )
    yield "static-hmac", "aes-static", "hmac", StaticCryptographicMaterialsProvider(
        encryption_materials=RawEncryptionMaterials(signing_key=hmac, encryption_key=aes_content),
        decryption_materials=RawDecryptionMaterials(verification_key=hmac, decryption_key=aes_content),
    )


def items():
    """Every attribute type, nested, non-ASCII, in encrypted and sign-only attributes.

    `huge` and `public_big` have more than 28 significant digits: the package
    rounds them to 28 in what it encrypts and signs."""
    nested = {
        "M": {
            "zeta": {"S": "last"},
            "ålpha": {"N": "-12.500"},
            "list": {"L": [{"BOOL": True}, {"NULL": True}, {"B": b"\x00\xff\x10"}, {"M": {"deep": {"SS": ["b", "a"]}}}]},
            "émoji 🔑": {"S": "ключ 🔐"},
        }
    }
    yield {
        "pk": {"S": "user#1"},
        "sk": {"N": "100"},
        "text": {"S": "héllo wörld ✓"},
        "number": {"N": "1.2300E+5"},
        "big": {"N": "123456789012345678901234567"},
        "huge": {"N": "1234567890.12345678901234567890123"},
        "small": {"N": "-0.000001"},
        "blob": {"B": bytes(range(256))},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "strings": {"SS": ["pear", "Äpfel", "apple", "🍌"]},
        "numbers": {"NS": ["10", "9", "-1.5", "1e3"]},
        "blobs": {"BS": [b"\x02", b"\x01\x00", b"\xff"]},
        "list": {"L": [{"S": "one"}, {"N": "2"}, nested]},
        "map": nested,
        "empty_list": {"L": []},
        "empty_map": {"M": {}},
        "public": {"S": "signed, not encrypted"},
        "public_map": nested,
        "public_numbers": {"NS": ["3", "20", "100"]},
        "public_big": {"N": "-98765432109876543210987654321098.7"},
        "ignored": {"S": "neither signed nor encrypted"},
    }
    yield {"pk": {"S": "user#2"}, "sk": {"N": "-7.25"}, "text": {"S": ""}, "public": {"BOOL": True}}


def actions():
    a = AttributeActions(
        default_action=CryptoAction.ENCRYPT_AND_SIGN,
        attribute_actions={
            "public": CryptoAction.SIGN_ONLY,
            "public_map": CryptoAction.SIGN_ONLY,
            "public_numbers": CryptoAction.SIGN_ONLY,
            "public_big": CryptoAction.SIGN_ONLY,
            "ignored": CryptoAction.DO_NOTHING,
        },
    )
    a.set_index_keys("pk", "sk")
    return a


def to_json(value):
    """DynamoDB JSON with binary values in base64."""
    (tag, v), = value.items()
    if tag == "B":
        return {"B": base64.b64encode(bytes(v)).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode() for b in v]}
    if tag == "L":
        return {"L": [to_json(m) for m in v]}
    if tag == "M":
        return {"M": {k: to_json(m) for k, m in v.items()}}
    return {tag: v}


def main():
    with open(sys.argv[1], "rb") as f:
        rsa_pem = f.read()
    attribute_actions = actions()
    names = {a: action.name for a, action in attribute_actions.attribute_actions.items()}
    for case, wrap, sign, provider in providers(rsa_pem):
        context = EncryptionContext(table_name=TABLE, partition_key_name="pk", sort_key_name="sk")
        config = CryptoConfig(materials_provider=provider, encryption_context=context, attribute_actions=attribute_actions)
        for index, item in enumerate(items()):
            stored = encrypt_dynamodb_item(dict(item), config)
            # The peer's own reading of what it wrote: the expected plaintext
            # (numbers in encrypted attributes come back normalized).
            expected = decrypt_dynamodb_item(dict(stored), config)
            line = {
                "case": "{}-{}".format(case, index),
                "wrap": wrap,
                "sign": sign,
                # The key material (fixed test keys), so each line stands alone.
                "keys": {
                    "aes": AES_KEY.hex(),
                    "hmac": HMAC_KEY.hex(),
                    "rsa_private_pem": "tests/data/interop-rsa-2048-private.pem",
                },
                "table": TABLE,
                "default_action": attribute_actions.default_action.name,
                "actions": names,
                "plaintext": {k: to_json(v) for k, v in item.items()},
                "expected": {k: to_json(v) for k, v in expected.items()},
                "stored": {k: to_json(v) for k, v in stored.items()},
            }
            print(json.dumps(line, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
