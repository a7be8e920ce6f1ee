//! [`WhatsApp`] on the real Cloud API: sends through the client, templates through a cached
//! catalog so a dispatch of a million rows fetches the template list once, not per message.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::template::Template;
use crate::ports::WhatsApp;
use crate::whatsapp::client::{
    ClientError, CloudApiClient, CloudApiConfig, SendAccepted, SendError, TemplateCatalog,
};

#[derive(Clone)]
pub struct CloudWhatsApp {
    client: CloudApiClient,
    catalog: Arc<TemplateCatalog>,
}

impl CloudWhatsApp {
    pub fn new(config: CloudApiConfig, template_ttl: Duration) -> Result<Self, ClientError> {
        let client = CloudApiClient::new(config)?;
        let catalog = Arc::new(TemplateCatalog::new(client.clone(), template_ttl));
        Ok(Self { client, catalog })
    }
}

impl WhatsApp for CloudWhatsApp {
    async fn send(&self, payload: &serde_json::Value) -> Result<SendAccepted, SendError> {
        self.client.send(payload).await
    }

    async fn template(&self, name: &str, language: &str) -> Result<Option<Template>, SendError> {
        self.catalog.get(name, language).await
    }

    async fn refresh_templates(&self) {
        self.catalog.invalidate().await;
    }
}
