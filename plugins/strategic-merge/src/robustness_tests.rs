//! Patches come from users' repositories, so no input may make the plugin trap: random objects and
//! patches (built from the field names and directive values that steer the merge) must give a value
//! or an error, never a panic. A small deterministic generator keeps failures reproducible.

use serde_json::{Map, Value, json};

use crate::{Schema, apply_json6902, strategic_merge};

/// xorshift64: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }
}

const FIELDS: &[&str] = &[
    "spec",
    "template",
    "containers",
    "name",
    "image",
    "finalizers",
    "env",
    "ports",
    "containerPort",
    "protocol",
    "$patch",
    "value",
    "volumes",
    "metadata",
    "args",
];
const SCALARS: &[&str] = &[
    "merge", "replace", "delete", "bogus", "a", "b", "80", "TCP", "",
];

fn value(random: &mut Random, depth: usize) -> Value {
    match random.below(if depth == 0 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => json!(random.below(3) * 40),
        2 | 3 => Value::String(random.pick(SCALARS).to_owned()),
        4 | 5 => {
            let mut fields = Map::new();
            for _ in 0..random.below(4) {
                fields.insert(random.pick(FIELDS).to_owned(), value(random, depth - 1));
            }
            Value::Object(fields)
        }
        _ => Value::Array(
            (0..random.below(4))
                .map(|_| value(random, depth - 1))
                .collect(),
        ),
    }
}

fn object(random: &mut Random) -> Value {
    let mut object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    if random.below(2) == 0 {
        object["apiVersion"] = json!("apps/v1");
        object["kind"] = json!("Deployment");
    }
    let spec = value(random, 4);
    object["spec"] = match spec {
        Value::Object(_) => spec,
        other => json!({"template": {"spec": {"containers": [other]}}}),
    };
    object
}

#[test]
fn random_strategic_merges_never_panic_and_errors_name_a_place() {
    let mut random = Random(0x5eed_1234_abcd_0042);
    let mut merged = 0;
    for _ in 0..20_000 {
        let base = object(&mut random);
        let patch = object(&mut random);
        match strategic_merge(&base, &patch, Schema::kubernetes()) {
            Ok(_) => merged += 1,
            Err(error) => assert!(error.to_string().starts_with('/'), "{error}"),
        }
    }
    // The generator must exercise the merge, not only its refusals.
    assert!(merged > 1_000, "only {merged} merges succeeded");
}

/// Every JSON pointer of `value`, with `prefix` prepended.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{prefix}/{escaped}"), out);
            }
        }
        Value::Array(elements) => {
            for (i, child) in elements.iter().enumerate() {
                pointers(child, format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(prefix);
}

#[test]
fn random_json_patches_never_panic_and_tests_of_present_values_hold() {
    let mut random = Random(0x0bad_cafe_f00d_0001);
    for _ in 0..5_000 {
        let target = object(&mut random);
        let mut paths = Vec::new();
        pointers(&target, String::new(), &mut paths);
        let path = paths[random.below(paths.len())].clone();
        let present = target
            .pointer(&path)
            .cloned()
            .expect("a pointer of the target");
        let holds = apply_json6902(
            &target,
            &json!([{"op": "test", "path": path, "value": present}]),
        );
        assert_eq!(holds.as_ref(), Ok(&target), "test of {path}");

        let junk = [
            "/-",
            "/spec/-1",
            "/spec/99",
            "",
            "/~2",
            "/spec/template/spec/containers/-",
        ];
        let operations: Vec<Value> = (0..3)
            .map(|_| {
                let op = random.pick(&["add", "remove", "replace", "move", "copy", "test"]);
                let pick = |random: &mut Random| match random.below(2) {
                    0 => paths[random.below(paths.len())].clone(),
                    _ => random.pick(&junk).to_owned(),
                };
                let path = pick(&mut random);
                let from = pick(&mut random);
                json!({"op": op, "path": path, "from": from, "value": value(&mut random, 2)})
            })
            .collect();
        if let Err(error) = apply_json6902(&target, &Value::Array(operations)) {
            assert!(error.to_string().starts_with("operation "), "{error}");
        }
    }
}
