//! Write and read encrypted DynamoDB items through `EncryptedClient`, with
//! an AES key on a PKCS#11 token, and print each item as stored next to the
//! item as read.
//!
//! ```text
//! export HSM_KEYRING_DYNAMODB_ENDPOINT=$(ci/dynalite.sh start)   # default http://127.0.0.1:4567
//! export HSM_KEYRING_TOKEN_URI='pkcs11:token=dev?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/path/to/pin'
//! cargo run --example encrypted_table --features dynamodb-client
//! ```
//!
//! The AES key labelled `table-key` is used, and generated on the token if
//! it is not there yet. The table `encrypted-table-example` is created if missing.

use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use hsm_keyring::dynamodb_client::{aws_sdk_dynamodb, EncryptedClient};
use hsm_keyring::items::legacy::LegacyPolicy;
use hsm_keyring::items::{from_sdk_item, to_sdk_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token};

const TABLE: &str = "encrypted-table-example";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("HSM_KEYRING_DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4567".to_owned());
    let Ok(token_uri) = std::env::var("HSM_KEYRING_TOKEN_URI") else {
        eprintln!("set HSM_KEYRING_TOKEN_URI to the token's PKCS#11 URI (with module-path and pin-source)");
        std::process::exit(2);
    };
    let token = Token::open(&Pkcs11Uri::parse(&token_uri)?)?;
    let key_uri = token.key_uri(Some("table-key"), None, None);
    let keyring = match Pkcs11AesKeyring::new(token.clone(), &key_uri) {
        Ok(k) => k,
        Err(_) => Pkcs11AesKeyring::new(token.clone(), &token.generate_aes_key("table-key", None)?)?,
    };

    let sdk_config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "example"))
        .build();
    let plain = aws_sdk_dynamodb::Client::from_conf(sdk_config);
    create_table(&plain).await?;

    let config = TableConfig::builder(TABLE, "customer")
        .sort_key("order")
        .action("status", CryptoAction::SignOnly)
        .default_action(CryptoAction::EncryptAndSign)
        .keyring(keyring)
        .build()?;
    let client = EncryptedClient::new(plain.clone()).table(TABLE, config, LegacyPolicy::ForbidLegacy);

    let item = Item::from([
        ("customer".to_owned(), AttributeValue::S("c-42".into())),
        ("order".to_owned(), AttributeValue::N("1".into())),
        ("status".to_owned(), AttributeValue::S("paid".into())),
        ("card".to_owned(), AttributeValue::S("4111 1111 1111 1111".into())),
        ("total".to_owned(), AttributeValue::N("99.9".into())),
    ]);
    client.put_item(client.inner().put_item().table_name(TABLE), &item).await?;

    let key = Item::from([
        ("customer".to_owned(), AttributeValue::S("c-42".into())),
        ("order".to_owned(), AttributeValue::N("1".into())),
    ]);
    let stored = plain.get_item().table_name(TABLE).set_key(Some(to_sdk_item(&key))).send().await?.item;
    let read = client.get_item(client.inner().get_item().table_name(TABLE).set_key(Some(to_sdk_item(&key)))).await?;
    println!("stored: {:?}", stored.map(from_sdk_item).transpose()?);
    println!("read:   {read:?}");
    assert_eq!(read.as_ref(), Some(&item));
    Ok(())
}

async fn create_table(client: &aws_sdk_dynamodb::Client) -> Result<(), Box<dyn std::error::Error>> {
    if client.describe_table().table_name(TABLE).send().await.is_ok() {
        return Ok(());
    }
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("customer").attribute_type(ScalarAttributeType::S).build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("order").attribute_type(ScalarAttributeType::N).build()?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("customer").key_type(KeyType::Hash).build()?)
        .key_schema(KeySchemaElement::builder().attribute_name("order").key_type(KeyType::Range).build()?)
        .send()
        .await?;
    for _ in 0..100 {
        let d = client.describe_table().table_name(TABLE).send().await?;
        if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
