//! The API's known routes, so that a path failure or an unmatched request is told apart as 404 or
//! 405 (the error handlers need them; `ops::unmatched` answers with them).

use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use super::ApiError;

/// The API's path templates and their methods, read from the OpenAPI spec, so that an unknown
/// method on a known path is a 405 with `Allow`, and anything else a 404.
pub struct KnownRoutes(Vec<(Vec<String>, Vec<Method>)>);

impl KnownRoutes {
    pub fn from_spec(spec: &utoipa::openapi::OpenApi) -> KnownRoutes {
        let value = serde_json::to_value(spec).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = value.get("paths").and_then(|p| p.as_object()) {
            for (path, item) in paths {
                let methods = item
                    .as_object()
                    .map(|m| {
                        m.keys()
                            .filter_map(|k| {
                                Method::from_bytes(k.to_ascii_uppercase().as_bytes()).ok()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                routes.push((path.split('/').map(str::to_string).collect(), methods));
            }
        }
        KnownRoutes(routes)
    }

    /// Adds a path served outside the spec (the spec document itself, the metrics).
    pub fn with(mut self, path: &str, methods: &[Method]) -> KnownRoutes {
        self.0.push((
            path.split('/').map(str::to_string).collect(),
            methods.to_vec(),
        ));
        self
    }

    /// The methods of the template that fits `path` best: the one with the most literal
    /// segments, so `/v1/transfers/forced` is that path and not `/v1/transfers/{id}`.
    fn methods_for(&self, path: &str) -> Option<&[Method]> {
        let segs: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(tpl, _)| {
                tpl.len() == segs.len()
                    && tpl
                        .iter()
                        .zip(&segs)
                        .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
            })
            .max_by_key(|(tpl, _)| tpl.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(_, methods)| methods.as_slice())
    }

    /// A 405 with `Allow` when `req`'s path is known but not with its method.
    pub fn method_not_allowed(&self, req: &HttpRequest) -> Option<HttpResponse> {
        match self.methods_for(req.path()) {
            Some(methods) if !methods.contains(req.method()) => {
                let allow = methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut res = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("use {allow}"),
                )
                .problem();
                res.detail = format!("{} is not allowed here; use {allow}", req.method());
                Some(
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, allow))
                        .content_type("application/problem+json")
                        .json(res),
                )
            }
            _ => None,
        }
    }
}
