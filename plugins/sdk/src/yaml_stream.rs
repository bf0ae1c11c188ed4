//! Splitting a YAML stream into its documents, each with the line it starts on, so that every
//! renderer reports errors at the file's real line rather than the document's. Parsing each
//! document is left to the renderer: YAML readers differ (kustomize reads integers as Go does).

/// One document of a stream: its text and the 1-based line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlDocument {
    pub start_line: usize,
    pub text: String,
}

/// The documents of `text`, split at `---` lines (with nothing after them but spaces or a comment),
/// in order; empty ones included, since only a parser can tell that a document holds nothing.
pub fn yaml_documents(text: &str) -> Vec<YamlDocument> {
    let mut documents = Vec::new();
    let mut start_line = 1;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        if is_document_separator(line) {
            documents.push(YamlDocument {
                start_line,
                text: std::mem::take(&mut current),
            });
            start_line = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.push(YamlDocument {
        start_line,
        text: current,
    });
    documents
}

fn is_document_separator(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '#']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_know_their_first_line() {
        let documents = yaml_documents("---\na: 1\n--- # second\nb: 2\n\n---x: not a separator\n");
        let starts: Vec<_> = documents.iter().map(|d| d.start_line).collect();
        assert_eq!(starts, [1, 2, 4]);
        assert_eq!(documents[0].text, "");
        assert_eq!(documents[1].text, "a: 1\n");
        assert_eq!(documents[2].text, "b: 2\n\n---x: not a separator\n");
    }
}
