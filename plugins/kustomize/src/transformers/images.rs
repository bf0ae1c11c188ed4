//! `images:` — rewrite container images by name: a new name, tag, digest or tag suffix. Like kustomize,
//! every `containers`/`initContainers` list anywhere in an object is searched, plus the image field specs.

use crate::error::Result;
use crate::fieldspec::{FieldSpec, visit};
use crate::kustomization::Image;
use crate::resource::ResMap;
use regex::Regex;
use serde_json::Value;

pub fn apply(resources: &mut ResMap, image: &Image, specs: &[FieldSpec]) -> Result<()> {
    // kustomize puts the name into a regex unescaped; a name that doesn't compile matches nothing.
    let Ok(pattern) = Regex::new(&format!(
        "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{{}}-]*)?$",
        image.name
    )) else {
        return Ok(());
    };
    let update = |value: &mut Value| {
        if let Value::String(s) = value
            && pattern.is_match(s)
        {
            *s = updated(s, image);
        }
    };
    for resource in &mut resources.resources {
        if resource.kind() == "CustomResourceDefinition" {
            continue;
        }
        let mut node = Value::Object(std::mem::take(&mut resource.object));
        walk_containers(&mut node, &update);
        let id = resource.org_id.clone();
        let mut result = Ok(());
        for spec in specs.iter().filter(|s| s.selects(&id)) {
            result = visit(
                &mut node,
                &spec.segments(),
                false,
                &|| Value::Null,
                &mut |value| {
                    update(value);
                    Ok(())
                },
            );
            if result.is_err() {
                break;
            }
        }
        if let Value::Object(map) = node {
            resource.object = map;
        }
        result?;
    }
    Ok(())
}

fn walk_containers(node: &mut Value, update: &dyn Fn(&mut Value)) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                walk_containers(value, update);
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(items) = value
                {
                    for item in items {
                        if let Some(image) = item.get_mut("image") {
                            update(image);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_containers(item, update);
            }
        }
        _ => {}
    }
}

fn updated(value: &str, image: &Image) -> String {
    let (name, tag, digest) = split(value);
    let mut name = if image.new_name.is_empty() {
        name.to_owned()
    } else {
        image.new_name.clone()
    };
    let (tag, digest) = match (image.new_tag.is_empty(), image.digest.is_empty()) {
        (false, false) => (image.new_tag.clone(), image.digest.clone()),
        (false, true) => (image.new_tag.clone(), String::new()),
        (true, false) => (String::new(), image.digest.clone()),
        (true, true) if !image.tag_suffix.is_empty() => {
            (format!("{tag}{}", image.tag_suffix), String::new())
        }
        (true, true) => (tag.to_owned(), digest.to_owned()),
    };
    if !tag.is_empty() {
        name.push(':');
        name.push_str(&tag);
    }
    if !digest.is_empty() {
        name.push('@');
        name.push_str(&digest);
    }
    name
}

/// kustomize's `image.Split`: name, tag and digest; a `:` before the first `/` is a registry port.
fn split(image: &str) -> (&str, &str, &str) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@');
    let colon = search.find(':');
    match (colon, at) {
        (None, None) => (image, "", ""),
        (c, Some(d)) if c.is_none_or(|c| d < c) => {
            (&image[..slash + d], "", &image[slash + d + 1..])
        }
        (Some(c), Some(d)) => (
            &image[..slash + c],
            &image[slash + c + 1..slash + d],
            &image[slash + d + 1..],
        ),
        (Some(c), None) => (&image[..slash + c], &image[slash + c + 1..], ""),
        (None, Some(_)) => unreachable!("handled by the digest-first arm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_knows_ports_tags_and_digests() {
        assert_eq!(split("nginx"), ("nginx", "", ""));
        assert_eq!(split("nginx:1.2"), ("nginx", "1.2", ""));
        assert_eq!(split("reg:5000/nginx:1.2"), ("reg:5000/nginx", "1.2", ""));
        assert_eq!(split("nginx@sha256:ab"), ("nginx", "", "sha256:ab"));
        assert_eq!(split("nginx:1@sha256:ab"), ("nginx", "1", "sha256:ab"));
    }

    #[test]
    fn new_tag_drops_the_digest() {
        let image = Image {
            name: "nginx".into(),
            new_tag: "2".into(),
            ..Default::default()
        };
        assert_eq!(updated("nginx:1@sha256:ab", &image), "nginx:2");
    }
}
