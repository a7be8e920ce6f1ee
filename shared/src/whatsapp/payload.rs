//! The JSON body of `POST /{version}/{phone-number-id}/messages` for a template message.

use serde_json::{Map, Value, json};

use crate::domain::phone::PhoneNumber;
use crate::domain::template::{ButtonKind, Component, HeaderFormat, Template, Variable};

/// Separates our callback data from the button index in a quick-reply payload.
const BUTTON_SEPARATOR: &str = "#b";

/// The template message for one recipient.
///
/// `variables` are aligned with `template.variables` (as [`crate::domain::intake`] produces
/// them); a missing value is sent as an empty text, which WhatsApp refuses. `callback_data`
/// (our message id) goes to `biz_opaque_callback_data` and, with `#b<index>`, into every
/// quick-reply button's payload, so a tap leads back to the message and the button.
pub fn template_message(
    template: &Template,
    to: &PhoneNumber,
    variables: &[String],
    callback_data: &str,
) -> Value {
    let value_of = |i: usize| variables.get(i).map(String::as_str).unwrap_or_default();
    let params_of = |component: Component| -> Vec<Value> {
        template
            .variables
            .iter()
            .enumerate()
            .filter(|(_, v)| v.component == component)
            .map(|(i, v)| parameter(template, v, value_of(i)))
            .collect()
    };

    let mut components = Vec::new();
    let header = params_of(Component::Header);
    if !header.is_empty() {
        components.push(json!({ "type": "header", "parameters": header }));
    }
    let body = params_of(Component::Body);
    if !body.is_empty() {
        components.push(json!({ "type": "body", "parameters": body }));
    }
    for button in &template.buttons {
        let index = button.index.to_string();
        match &button.kind {
            ButtonKind::QuickReply => components.push(json!({
                "type": "button",
                "sub_type": "quick_reply",
                "index": index,
                "parameters": [ {
                    "type": "payload",
                    "payload": button_payload(callback_data, button.index),
                } ],
            })),
            ButtonKind::Url { .. } => {
                let parameters = params_of(Component::Button {
                    index: button.index,
                });
                if !parameters.is_empty() {
                    components.push(json!({
                        "type": "button",
                        "sub_type": "url",
                        "index": index,
                        "parameters": parameters,
                    }));
                }
            }
            // Static buttons need no component; unsupported ones never reach a send.
            ButtonKind::PhoneNumber | ButtonKind::CopyCode | ButtonKind::Other(_) => {}
        }
    }

    let mut template_object = Map::new();
    template_object.insert("name".into(), json!(template.name));
    template_object.insert("language".into(), json!({ "code": template.language }));
    if !components.is_empty() {
        template_object.insert("components".into(), Value::Array(components));
    }

    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.digits(),
        "type": "template",
        "biz_opaque_callback_data": callback_data,
        "template": Value::Object(template_object),
    })
}

/// A free-form text message: allowed only inside the customer's 24-hour window (131047
/// outside it).
pub fn text_message(to: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.trim_start_matches('+'),
        "type": "text",
        "text": { "preview_url": false, "body": body },
    })
}

fn parameter(template: &Template, variable: &Variable, value: &str) -> Value {
    if variable.is_media() {
        let kind = template
            .header
            .as_ref()
            .and_then(HeaderFormat::media_type)
            .unwrap_or("image");
        return json!({ "type": kind, kind: { "link": value } });
    }
    let mut parameter = json!({ "type": "text", "text": value });
    if let (Some(name), Value::Object(object)) = (variable.parameter_name(), &mut parameter) {
        object.insert("parameter_name".into(), json!(name));
    }
    parameter
}

/// The payload of quick-reply button `index`: "<callback_data>#b<index>".
pub fn button_payload(callback_data: &str, index: u8) -> String {
    format!("{callback_data}{BUTTON_SEPARATOR}{index}")
}

/// Reads a quick-reply payload back: ("<callback_data>", index). None if it is not ours.
pub fn parse_button_payload(payload: &str) -> Option<(&str, u8)> {
    let (callback_data, index) = payload.rsplit_once(BUTTON_SEPARATOR)?;
    if callback_data.is_empty() || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((callback_data, index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::tests::{boas_vindas_json, lembrete_json, parse, pedido_json};

    fn phone() -> PhoneNumber {
        PhoneNumber::from_e164_unchecked("+5511987654321")
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn positional_template_matches_the_documented_payload() {
        let t = parse(boas_vindas_json());
        let payload = template_message(
            &t,
            &phone(),
            &strings(&["Loja Centro", "Maria", "25/12/2026"]),
            "d-1:7",
        );
        assert_eq!(
            payload,
            json!({
              "messaging_product": "whatsapp",
              "recipient_type": "individual",
              "to": "5511987654321",
              "type": "template",
              "biz_opaque_callback_data": "d-1:7",
              "template": {
                "name": "boas_vindas",
                "language": { "code": "pt_BR" },
                "components": [
                  { "type": "header", "parameters": [ { "type": "text", "text": "Loja Centro" } ] },
                  { "type": "body", "parameters": [
                      { "type": "text", "text": "Maria" },
                      { "type": "text", "text": "25/12/2026" } ] },
                  { "type": "button", "sub_type": "quick_reply", "index": "0",
                    "parameters": [ { "type": "payload", "payload": "d-1:7#b0" } ] },
                  { "type": "button", "sub_type": "quick_reply", "index": "1",
                    "parameters": [ { "type": "payload", "payload": "d-1:7#b1" } ] }
                ]
              }
            })
        );
    }

    #[test]
    fn named_parameters_carry_their_names() {
        let t = parse(lembrete_json());
        let payload = template_message(
            &t,
            &phone(),
            &strings(&["Maria", "25/12/2026", "14:30"]),
            "d-2:1",
        );
        assert_eq!(
            payload["template"]["components"],
            json!([ { "type": "body", "parameters": [
                { "type": "text", "text": "Maria", "parameter_name": "nome" },
                { "type": "text", "text": "25/12/2026", "parameter_name": "data" },
                { "type": "text", "text": "14:30", "parameter_name": "hora" } ] } ])
        );
    }

    #[test]
    fn media_header_and_url_button() {
        let t = parse(pedido_json());
        let payload = template_message(
            &t,
            &phone(),
            &strings(&["https://cdn.example/p.jpg", "#42", "ABC123"]),
            "d-3:9",
        );
        assert_eq!(
            payload["template"]["components"],
            json!([
              { "type": "header", "parameters": [
                  { "type": "image", "image": { "link": "https://cdn.example/p.jpg" } } ] },
              { "type": "body", "parameters": [ { "type": "text", "text": "#42" } ] },
              { "type": "button", "sub_type": "url", "index": "0",
                "parameters": [ { "type": "text", "text": "ABC123" } ] },
              { "type": "button", "sub_type": "quick_reply", "index": "2",
                "parameters": [ { "type": "payload", "payload": "d-3:9#b2" } ] }
            ])
        );
    }

    #[test]
    fn components_are_omitted_when_empty() {
        let t = parse(json!({
            "name": "oi", "language": "en_US", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "Hi!" },
              { "type": "BUTTONS", "buttons": [
                  { "type": "URL", "text": "Site", "url": "https://x.example/" } ] } ]
        }));
        let payload = template_message(&t, &phone(), &[], "d:1");
        assert_eq!(
            payload["template"],
            json!({ "name": "oi", "language": { "code": "en_US" } })
        );
    }

    #[test]
    fn button_payload_round_trips() {
        assert_eq!(button_payload("d-1:7", 1), "d-1:7#b1");
        assert_eq!(parse_button_payload("d-1:7#b1"), Some(("d-1:7", 1)));
        assert_eq!(parse_button_payload("a#b#b2"), Some(("a#b", 2)));
        for bad in ["", "d-1:7", "#b1", "d#b", "d#bx", "d#b999"] {
            assert_eq!(parse_button_payload(bad), None, "{bad:?}");
        }
    }
}
