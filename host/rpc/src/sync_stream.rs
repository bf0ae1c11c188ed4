//! The order of `GetObjectsToSynchronize` messages, declared once: `Header`, then `File`* (chunks of one
//! file contiguous, same path), then `Trailer`; repeated for every new commit. [`SyncAssembler`] checks
//! the order and the limits as messages arrive and yields each complete set, so a receiver never acts on
//! a partial one.

use crate::gitops::v1::objects_to_synchronize_response::Message;
use crate::gitops::v1::{File, Header, ObjectsToSynchronizeResponse, Trailer};
use crate::limits::{MAX_CHUNK_SIZE, MAX_FILE_SIZE, MAX_FILES, MAX_TOTAL_SIZE, format_size};
use bytes::{Bytes, BytesMut};

/// A complete set of files at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsSet {
    pub commit_id: String,
    /// In the order received (path order), each file's chunks joined.
    pub files: Vec<(String, Bytes)>,
}

/// Where the stream is.
#[derive(Debug, Default)]
enum State {
    /// Waiting for a `Header`.
    #[default]
    Idle,
    /// Between `Header` and `Trailer`.
    InSet {
        commit_id: String,
        files: Vec<(String, BytesMut)>,
        total: u64,
    },
}

/// A message that breaks the declared order or a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream order: expected {expected}, got {got}")]
    Order {
        expected: &'static str,
        got: &'static str,
    },
    #[error("stream message without content")]
    Empty,
    #[error("file `{path}` appears twice in one set")]
    DuplicatePath { path: String },
    #[error("chunk of `{path}` is {size} bytes; the limit is {} per message", format_size(MAX_CHUNK_SIZE as u64))]
    ChunkTooLarge { path: String, size: usize },
    #[error(
        "file `{path}` is over the limit of {} per file",
        format_size(MAX_FILE_SIZE)
    )]
    FileTooLarge { path: String },
    #[error(
        "the files are over the limit of {} per sync (at `{path}`)",
        format_size(MAX_TOTAL_SIZE)
    )]
    TotalTooLarge { path: String },
    #[error("more than {MAX_FILES} files in one sync (at `{path}`)")]
    TooManyFiles { path: String },
}

/// Checks and assembles `GetObjectsToSynchronize` messages.
#[derive(Debug, Default)]
pub struct SyncAssembler {
    state: State,
}

impl SyncAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next message; returns the set it completes, if any.
    pub fn accept(
        &mut self,
        response: ObjectsToSynchronizeResponse,
    ) -> Result<Option<ObjectsSet>, StreamError> {
        let message = response.message.ok_or(StreamError::Empty)?;
        match (&mut self.state, message) {
            (State::Idle, Message::Header(Header { commit_id })) => {
                self.state = State::InSet {
                    commit_id,
                    files: Vec::new(),
                    total: 0,
                };
                Ok(None)
            }
            (State::Idle, other) => Err(StreamError::Order {
                expected: "Header",
                got: name(&other),
            }),
            (State::InSet { files, total, .. }, Message::File(File { path, data })) => {
                if data.len() > MAX_CHUNK_SIZE {
                    return Err(StreamError::ChunkTooLarge {
                        path,
                        size: data.len(),
                    });
                }
                *total += data.len() as u64;
                if *total > MAX_TOTAL_SIZE {
                    return Err(StreamError::TotalTooLarge { path });
                }
                match files.last_mut() {
                    Some((last, content)) if *last == path => {
                        content.extend_from_slice(&data);
                        if content.len() as u64 > MAX_FILE_SIZE {
                            return Err(StreamError::FileTooLarge { path });
                        }
                    }
                    _ => {
                        if files.iter().any(|(p, _)| *p == path) {
                            return Err(StreamError::DuplicatePath { path });
                        }
                        if files.len() == MAX_FILES {
                            return Err(StreamError::TooManyFiles { path });
                        }
                        files.push((path, BytesMut::from(&data[..])));
                    }
                }
                Ok(None)
            }
            (State::InSet { .. }, Message::Trailer(Trailer {})) => {
                let State::InSet {
                    commit_id, files, ..
                } = std::mem::take(&mut self.state)
                else {
                    unreachable!("matched InSet above")
                };
                Ok(Some(ObjectsSet {
                    commit_id,
                    files: files.into_iter().map(|(p, c)| (p, c.freeze())).collect(),
                }))
            }
            (State::InSet { .. }, Message::Header(_)) => Err(StreamError::Order {
                expected: "File or Trailer",
                got: "Header",
            }),
        }
    }
}

fn name(message: &Message) -> &'static str {
    match message {
        Message::Header(_) => "Header",
        Message::File(_) => "File",
        Message::Trailer(_) => "Trailer",
    }
}

/// The messages of one set, files split into chunks: what the server sends.
pub fn encode_set(commit_id: &str, files: &[(String, Bytes)]) -> Vec<ObjectsToSynchronizeResponse> {
    let wrap = |message| ObjectsToSynchronizeResponse {
        message: Some(message),
    };
    let mut out = vec![wrap(Message::Header(Header {
        commit_id: commit_id.to_owned(),
    }))];
    for (path, content) in files {
        if content.is_empty() {
            out.push(wrap(Message::File(File {
                path: path.clone(),
                data: Bytes::new(),
            })));
        }
        let mut offset = 0;
        while offset < content.len() {
            let end = (offset + MAX_CHUNK_SIZE).min(content.len());
            out.push(wrap(Message::File(File {
                path: path.clone(),
                data: content.slice(offset..end),
            })));
            offset = end;
        }
    }
    out.push(wrap(Message::Trailer(Trailer {})));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8]) -> (String, Bytes) {
        (path.to_owned(), Bytes::copy_from_slice(data))
    }

    #[test]
    fn encoded_sets_round_trip_with_large_files_chunked() {
        let big = vec![7u8; MAX_CHUNK_SIZE * 2 + 5];
        let files = vec![
            file("a.yaml", b"a: 1"),
            file("b/big.yaml", &big),
            file("empty.yaml", b""),
        ];
        let messages = encode_set("c1", &files);
        assert_eq!(
            messages.len(),
            1 + 1 + 3 + 1 + 1,
            "header, a, three chunks, empty, trailer"
        );
        let mut assembler = SyncAssembler::new();
        let mut sets = Vec::new();
        for m in messages.into_iter().chain(encode_set("c2", &[])) {
            sets.extend(assembler.accept(m).unwrap());
        }
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].commit_id, "c1");
        assert_eq!(sets[0].files, files);
        assert_eq!(sets[1].files, []);
    }

    #[test]
    fn out_of_order_messages_are_refused() {
        let mut a = SyncAssembler::new();
        let trailer = encode_set("c", &[]).pop().unwrap();
        assert_eq!(
            a.accept(trailer),
            Err(StreamError::Order {
                expected: "Header",
                got: "Trailer"
            })
        );
        let mut a = SyncAssembler::new();
        let header = encode_set("c", &[]).remove(0);
        a.accept(header.clone()).unwrap();
        assert!(matches!(a.accept(header), Err(StreamError::Order { .. })));
        let mut a = SyncAssembler::new();
        let mut msgs = encode_set("c", &[file("x", b"1"), file("y", b"2")]);
        msgs.insert(3, msgs[1].clone());
        let results: Vec<_> = msgs.into_iter().map(|m| a.accept(m)).collect();
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(StreamError::DuplicatePath { path }) if path == "x"))
        );
    }

    #[test]
    fn limits_are_enforced_on_receipt() {
        let mut a = SyncAssembler::new();
        let big = vec![0u8; MAX_FILE_SIZE as usize + 1];
        let result = encode_set("c", &[file("huge.yaml", &big)])
            .into_iter()
            .try_for_each(|m| a.accept(m).map(drop));
        assert_eq!(
            result,
            Err(StreamError::FileTooLarge {
                path: "huge.yaml".into()
            })
        );
        assert!(result.unwrap_err().to_string().contains("5 MiB"));
    }

    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = ObjectsToSynchronizeResponse> {
        let wrap = |m| ObjectsToSynchronizeResponse { message: Some(m) };
        prop_oneof![
            "[0-9a-f]{0,8}".prop_map(move |c| wrap(Message::Header(Header { commit_id: c }))),
            ("[a-c]{1,2}", 0usize..(MAX_CHUNK_SIZE + 2)).prop_map(move |(p, n)| wrap(
                Message::File(File {
                    path: p,
                    data: Bytes::from(vec![0u8; n])
                })
            )),
            Just(wrap(Message::Trailer(Trailer {}))),
            Just(ObjectsToSynchronizeResponse { message: None }),
        ]
    }

    proptest! {
        // What a peer sends is untrusted: any sequence is either assembled into sets that respect the
        // declared order and limits, or refused with an error; never a panic.
        #[test]
        fn any_message_sequence_is_assembled_or_refused(messages in proptest::collection::vec(message(), 0..24)) {
            let mut assembler = SyncAssembler::new();
            for m in messages {
                match assembler.accept(m) {
                    Ok(Some(set)) => {
                        let total: usize = set.files.iter().map(|(_, c)| c.len()).sum();
                        prop_assert!(total as u64 <= MAX_TOTAL_SIZE);
                        prop_assert!(set.files.len() <= MAX_FILES);
                        let mut paths: Vec<_> = set.files.iter().map(|(p, _)| p).collect();
                        paths.dedup();
                        prop_assert_eq!(paths.len(), set.files.len());
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
    }
}
