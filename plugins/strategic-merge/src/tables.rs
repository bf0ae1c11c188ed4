//! The types of the static tables in `generated.rs`: the same shapes as `schema::Shape`, written as
//! constants so the built-in schema costs no parsing when a plugin starts.

/// A `schema::Shape` as a constant.
#[derive(Debug)]
pub(crate) enum StaticShape {
    Named(&'static str),
    Object {
        fields: &'static [(&'static str, StaticShape)],
        additional: Option<&'static StaticShape>,
    },
    List {
        strategy: Option<&'static str>,
        merge_key: Option<&'static str>,
        list_type: Option<&'static str>,
        map_keys: &'static [&'static str],
        items: Option<&'static StaticShape>,
    },
}

/// A kind the control plane serves.
#[derive(Debug)]
pub(crate) struct StaticKind {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    /// The OpenAPI definition of its objects; empty when the document had none.
    pub(crate) definition: &'static str,
    pub(crate) namespaced: bool,
}
