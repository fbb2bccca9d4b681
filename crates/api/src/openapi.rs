//! The OpenAPI 3.1 document: the paths come from the routes themselves (each `/v1` handler
//! carries its `#[utoipa::path]`, and `v1::routes` registers handlers only through it), so
//! the document cannot drift from what is served.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, SecurityRequirement};

pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("agentry")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Run agentic AI workflows as Amazon States Language state machines. Every call needs `Authorization: Bearer <JWT>`; every resource belongs to the caller's tenant.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}
