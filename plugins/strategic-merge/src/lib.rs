//! Strategic merge patch and JSON 6902 patch of Kubernetes objects, with merge keys and strategies generated from the Kubernetes OpenAPI schema (being written).
