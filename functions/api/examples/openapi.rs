//! Prints the OpenAPI document: `cargo run -p anna-api --example openapi > openapi.json`.

fn main() {
    match anna_api::openapi().to_pretty_json() {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("cannot render the OpenAPI document: {e}");
            std::process::exit(1);
        }
    }
}
