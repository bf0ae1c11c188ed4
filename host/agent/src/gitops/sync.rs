//! One sync of one manifest project: plan (check everything, touch nothing), record the
//! inventory, apply (Namespaces and CRDs first), wait for health, prune.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PropagationPolicy;
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::watch;

use crate::gitops::apply::{self, Applied, ApplyRequest, PlannedObject};
use tether_config::agent::AgentMode;
use tether_config::gitops::{self, DryRunStrategy, InventoryPolicy, PrunePropagationPolicy};

use crate::gitops::inventory::{InventoryId, InventoryStore, LoadedInventory};
use crate::gitops::kinds::{KindResolver, ResolvedKind};
use crate::gitops::prune::{self, Pruned};
use crate::gitops::{DesiredObject, KindFilter, ObjectRef, policy};

/// Objects applied (or pruned) at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

fn propagation(policy: PrunePropagationPolicy) -> PropagationPolicy {
    match policy {
        PrunePropagationPolicy::Orphan => PropagationPolicy::Orphan,
        PrunePropagationPolicy::Background => PropagationPolicy::Background,
        PrunePropagationPolicy::Foreground => PropagationPolicy::Foreground,
    }
}

/// How one manifest project is synchronised.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub inventory: InventoryId,
    /// Where the inventory ConfigMap lives: the agent's own namespace.
    pub inventory_namespace: String,
    /// Given to namespaced objects that name no namespace.
    pub default_namespace: String,
    pub mode: AgentMode,
    pub kinds: KindFilter,
    pub inventory_policy: InventoryPolicy,
    /// Take fields over from other field managers (GitLab's agent always does).
    pub force_conflicts: bool,
    pub dry_run: DryRunStrategy,
    pub prune: bool,
    pub prune_propagation: PrunePropagationPolicy,
    pub prune_timeout: Duration,
    pub reconcile_timeout: Duration,
    /// Wait for applied objects to become healthy before reporting.
    pub wait_for_health: bool,
    /// Let a commit with no objects prune every object of a non-empty inventory.
    pub allow_empty: bool,
    pub concurrency: usize,
}

impl SyncOptions {
    /// The configuration's defaults (GitLab's): namespace `default`, must_match, prune with
    /// foreground propagation, cluster-wide.
    pub fn new(inventory: InventoryId, inventory_namespace: impl Into<String>) -> Self {
        Self {
            inventory,
            inventory_namespace: inventory_namespace.into(),
            default_namespace: gitops::DEFAULT_NAMESPACE.into(),
            mode: AgentMode::ClusterWide,
            kinds: KindFilter::default(),
            inventory_policy: gitops::DEFAULT_INVENTORY_POLICY,
            force_conflicts: gitops::DEFAULT_FORCE_CONFLICTS,
            dry_run: gitops::DEFAULT_DRY_RUN_STRATEGY,
            prune: gitops::DEFAULT_PRUNE,
            prune_propagation: gitops::DEFAULT_PRUNE_PROPAGATION_POLICY,
            prune_timeout: gitops::DEFAULT_PRUNE_TIMEOUT,
            reconcile_timeout: gitops::DEFAULT_RECONCILE_TIMEOUT,
            wait_for_health: true,
            allow_empty: gitops::DEFAULT_ALLOW_EMPTY,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Which step an object failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectErrorKind {
    /// Not a valid object (no kind, no name, unknown kind, duplicate).
    Invalid,
    /// Outside what the agent may touch (mode, namespaces, kinds, inventory policy).
    Refused,
    Apply,
    Health,
    Prune,
    Inventory,
    /// The commit has no objects but the inventory has some, and the project does not allow
    /// that (`allow_empty`): nothing is applied or pruned.
    EmptyRefused,
}

/// One object's failure, named the way a person finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError {
    /// `Kind.group/namespace/name`, with the source file where known.
    pub object: String,
    /// The object, where it could be identified.
    pub reference: Option<ObjectRef>,
    pub kind: ObjectErrorKind,
    pub message: String,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// What a sync did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub dry_run: DryRunStrategy,
    /// Created or changed (with a dry run: would be applied).
    pub applied: Vec<ObjectRef>,
    pub unchanged: Vec<ObjectRef>,
    /// Deleted because they left the manifests (with a dry run: would be pruned).
    pub pruned: Vec<ObjectRef>,
    /// Left the manifests but kept, because `prune` is off.
    pub abandoned: Vec<ObjectRef>,
    pub errors: Vec<ObjectError>,
}

impl SyncReport {
    pub fn is_success(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether anything failed before or during apply, which rules out pruning.
    fn blocks_prune(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.kind != ObjectErrorKind::Health)
    }

    fn fail(
        &mut self,
        subject: impl Into<Subject>,
        kind: ObjectErrorKind,
        message: impl Into<String>,
    ) {
        let subject = subject.into();
        self.errors.push(ObjectError {
            object: subject.shown,
            reference: subject.reference,
            kind,
            message: message.into(),
        });
    }
}

/// What an error is about: an object (and where it came from), or something else by name.
struct Subject {
    shown: String,
    reference: Option<ObjectRef>,
}

impl From<&ObjectRef> for Subject {
    fn from(r: &ObjectRef) -> Self {
        Self {
            shown: r.to_string(),
            reference: Some(r.clone()),
        }
    }
}

impl From<(&ObjectRef, &str)> for Subject {
    fn from((r, source): (&ObjectRef, &str)) -> Self {
        Self {
            shown: if source.is_empty() {
                r.to_string()
            } else {
                format!("{r} ({source})")
            },
            reference: Some(r.clone()),
        }
    }
}

impl From<String> for Subject {
    fn from(shown: String) -> Self {
        Self {
            shown,
            reference: None,
        }
    }
}

impl From<&String> for Subject {
    fn from(shown: &String) -> Self {
        shown.clone().into()
    }
}

/// Synchronises one manifest project. Keep one per project for the agent's life: it caches
/// discovery.
pub struct Synchronizer {
    client: Client,
    options: SyncOptions,
    kinds: KindResolver,
    inventory: InventoryStore,
}

/// An object whose kind is defined by a CRD of the same sync and so cannot be resolved before
/// that CRD is established.
struct PendingObject {
    reference: ObjectRef,
    gvk: GroupVersionKind,
    body: Value,
    source: String,
}

struct Plan {
    planned: Vec<PlannedObject>,
    pending: Vec<PendingObject>,
}

impl Plan {
    fn references(&self) -> BTreeSet<ObjectRef> {
        self.planned
            .iter()
            .map(|p| p.reference.clone())
            .chain(self.pending.iter().map(|p| p.reference.clone()))
            .collect()
    }
}

fn is_crd(r: &ObjectRef) -> bool {
    r.group == "apiextensions.k8s.io" && r.kind == "CustomResourceDefinition"
}

fn is_namespace(r: &ObjectRef) -> bool {
    r.group.is_empty() && r.kind == "Namespace"
}

/// Applied before everything else, pruned after everything else.
fn goes_first(r: &ObjectRef) -> bool {
    is_crd(r) || is_namespace(r)
}

impl fmt::Debug for Synchronizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Synchronizer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Synchronizer {
    pub fn new(client: Client, options: SyncOptions) -> Self {
        let inventory = InventoryStore::new(
            Api::<ConfigMap>::namespaced(client.clone(), &options.inventory_namespace),
            options.inventory.clone(),
        );
        Self {
            client,
            options,
            kinds: KindResolver::default(),
            inventory,
        }
    }

    pub fn options(&self) -> &SyncOptions {
        &self.options
    }

    /// Makes the cluster hold `desired`. Every failure is in the report; nothing is pruned unless
    /// every object was checked and applied.
    pub async fn sync(&self, desired: Vec<DesiredObject>) -> SyncReport {
        let mut report = SyncReport {
            dry_run: self.options.dry_run,
            applied: Vec::new(),
            unchanged: Vec::new(),
            pruned: Vec::new(),
            abandoned: Vec::new(),
            errors: Vec::new(),
        };
        let plan = self.plan(desired, &mut report).await;
        if !report.errors.is_empty() {
            return report;
        }
        if self.options.dry_run == DryRunStrategy::Client {
            report.applied = plan.references().into_iter().collect();
            return report;
        }
        let server_dry_run = self.options.dry_run == DryRunStrategy::Server;
        let inventory_name = self.options.inventory.config_map_name();
        let LoadedInventory {
            owned: previous,
            legacy,
        } = match self.inventory.load().await {
            Ok(loaded) => loaded,
            Err(e) => {
                report.fail(&inventory_name, ObjectErrorKind::Inventory, e.to_string());
                return report;
            }
        };
        let wanted = plan.references();
        // A glob typo, a moved directory or a renderer that found nothing looks exactly like
        // "delete the whole project": that takes an explicit opt-in.
        if wanted.is_empty() && !previous.is_empty() && !self.options.allow_empty {
            report.fail(
                &inventory_name,
                ObjectErrorKind::EmptyRefused,
                format!(
                    "the commit renders no objects, which would prune all {} objects of the \
                     project; refused (nothing applied or pruned). Check the paths' globs, or set \
                     `allow_empty: true` on the manifest project to allow it",
                    previous.len()
                ),
            );
            return report;
        }
        if let Some(legacy) = &legacy {
            let left: Vec<ObjectRef> = legacy.difference(&wanted).cloned().collect();
            tracing::info!(
                inventory = %inventory_name,
                legacy = %self.options.inventory.legacy_config_map_name(),
                taken_over = legacy.len() - left.len(),
                left_in_place = left.len(),
                "migrating a legacy inventory: nothing is pruned in this sync"
            );
            report.abandoned.extend(left);
        }
        // Recorded before applying, so an agent that dies mid-sync still knows every object it
        // may have created.
        if !server_dry_run {
            let union = previous.union(&wanted).cloned().collect();
            if let Err(e) = self.inventory.save(&union).await {
                report.fail(&inventory_name, ObjectErrorKind::Inventory, e.to_string());
                return report;
            }
        }

        let (first, rest): (Vec<_>, Vec<_>) = plan
            .planned
            .into_iter()
            .partition(|p| goes_first(&p.reference));
        let mut applied = self.apply_all(first, server_dry_run, &mut report).await;
        let mut rest = rest;
        if !plan.pending.is_empty() {
            if !server_dry_run {
                // The CRDs of this sync must be served before their objects can be applied.
                self.wait_all(
                    applied
                        .iter()
                        .filter(|p| is_crd(&p.reference))
                        .cloned()
                        .collect(),
                    &mut report,
                )
                .await;
            }
            for pending in plan.pending {
                match self.kinds.resolve(&self.client, &pending.gvk).await {
                    Ok(Some(kind)) => rest.push(PlannedObject {
                        reference: pending.reference,
                        kind,
                        body: pending.body,
                    }),
                    Ok(None) if server_dry_run => {}
                    Ok(None) => report.fail(
                        (&pending.reference, pending.source.as_str()),
                        ObjectErrorKind::Apply,
                        "its CustomResourceDefinition was applied but the kind is not served",
                    ),
                    Err(e) => report.fail(
                        (&pending.reference, pending.source.as_str()),
                        ObjectErrorKind::Apply,
                        format!("discovery: {}", apply::describe(&e)),
                    ),
                }
            }
        }
        applied.extend(self.apply_all(rest, server_dry_run, &mut report).await);
        if self.options.wait_for_health && !server_dry_run {
            self.wait_all(applied, &mut report).await;
        }

        if report.blocks_prune() {
            // The inventory keeps every object of both commits: the next good sync prunes.
            return report;
        }
        let leaving: Vec<ObjectRef> = previous.difference(&wanted).cloned().collect();
        if server_dry_run {
            report.pruned = leaving;
            return report;
        }
        let mut kept = wanted;
        if self.options.prune {
            kept.extend(self.prune_all(leaving, &mut report).await);
        } else {
            report.abandoned = leaving;
        }
        if let Err(e) = self.inventory.save(&kept).await {
            report.fail(&inventory_name, ObjectErrorKind::Inventory, e.to_string());
        }
        report
    }

    /// [`Self::sync`] for as long as `leading` holds true: the moment it turns false (or its
    /// sender goes away) the sync is dropped at its next await, so no further request is sent —
    /// another replica may already lead. `None` then. Dropping is safe at any point: the inventory
    /// is recorded (old ∪ new) before anything is applied, so the next leader prunes correctly.
    pub async fn sync_while_leading(
        &self,
        desired: Vec<DesiredObject>,
        mut leading: watch::Receiver<bool>,
    ) -> Option<SyncReport> {
        tokio::select! {
            biased;
            // A closed channel is a leadership that can no longer change (no election): it keeps
            // its last value, so only an observed `false` stops the sync.
            () = async {
                if leading.wait_for(|leading| !*leading).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => None,
            report = self.sync(desired) => Some(report),
        }
    }

    /// Checks every object and resolves its kind; writes nothing.
    async fn plan(&self, desired: Vec<DesiredObject>, report: &mut SyncReport) -> Plan {
        let mut plan = Plan {
            planned: Vec::new(),
            pending: Vec::new(),
        };
        // Kinds this sync defines itself, with whether they are namespaced.
        let defined: HashMap<(String, String), bool> = desired
            .iter()
            .filter(|d| {
                d.gvk().is_ok_and(|g| {
                    g.group == "apiextensions.k8s.io" && g.kind == "CustomResourceDefinition"
                })
            })
            .filter_map(|d| crd_defines(&d.object.data))
            .map(|(group, kind, namespaced)| ((group, kind), namespaced))
            .collect();
        let mut seen: HashMap<ObjectRef, String> = HashMap::new();
        for object in desired {
            let gvk = match object.gvk() {
                Ok(gvk) => gvk,
                Err(e) => {
                    report.fail(object.describe(), ObjectErrorKind::Invalid, e);
                    continue;
                }
            };
            let Some(name) = object.name().map(str::to_owned) else {
                report.fail(
                    object.describe(),
                    ObjectErrorKind::Invalid,
                    "metadata.name is missing",
                );
                continue;
            };
            let resolved = match self.kinds.resolve(&self.client, &gvk).await {
                Ok(resolved) => resolved,
                Err(e) => {
                    report.fail(
                        object.describe(),
                        ObjectErrorKind::Invalid,
                        format!("discovery: {}", apply::describe(&e)),
                    );
                    continue;
                }
            };
            let namespaced = match (
                &resolved,
                defined.get(&(gvk.group.clone(), gvk.kind.clone())),
            ) {
                (Some(kind), _) => kind.namespaced,
                (None, Some(namespaced)) => *namespaced,
                (None, None) => {
                    report.fail(
                        object.describe(),
                        ObjectErrorKind::Invalid,
                        format!(
                            "the cluster does not serve {}/{} {} and no CustomResourceDefinition in \
                             these manifests defines it",
                            gvk.group, gvk.version, gvk.kind
                        ),
                    );
                    continue;
                }
            };
            let namespace = namespaced.then(|| {
                object
                    .namespace()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(&self.options.default_namespace)
                    .to_owned()
            });
            let reference = ObjectRef {
                group: gvk.group.clone(),
                kind: gvk.kind.clone(),
                namespace,
                name,
            };
            if let Some(first) = seen.get(&reference) {
                report.fail(
                    (&reference, object.source.as_str()),
                    ObjectErrorKind::Invalid,
                    format!("defined twice (also at {first})"),
                );
                continue;
            }
            seen.insert(reference.clone(), object.source.clone());
            if let Err(e) = self
                .options
                .kinds
                .check(&reference)
                .and_then(|()| policy::check_mode(&self.options.mode, &reference, namespaced))
            {
                report.fail(
                    (&reference, object.source.as_str()),
                    ObjectErrorKind::Refused,
                    e,
                );
                continue;
            }
            let body = request_body(&object, reference.namespace.as_deref());
            match resolved {
                Some(kind) => plan.planned.push(PlannedObject {
                    reference,
                    kind,
                    body,
                }),
                None => plan.pending.push(PendingObject {
                    reference,
                    gvk,
                    body,
                    source: object.source,
                }),
            }
        }
        plan
    }

    /// Applies objects concurrently; returns those that applied.
    async fn apply_all(
        &self,
        objects: Vec<PlannedObject>,
        server_dry_run: bool,
        report: &mut SyncReport,
    ) -> Vec<PlannedObject> {
        let inventory_id = self.options.inventory.id();
        let legacy_inventory_id = self.options.inventory.legacy_id();
        let request = ApplyRequest {
            client: &self.client,
            inventory_id: &inventory_id,
            legacy_inventory_id: &legacy_inventory_id,
            policy: self.options.inventory_policy,
            force: self.options.force_conflicts,
            server_dry_run,
        };
        let results: Vec<_> = futures::stream::iter(objects)
            .map(|planned| {
                let request = &request;
                async move {
                    let result = apply::apply(request, &planned).await;
                    (planned, result)
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut applied = Vec::new();
        for (planned, result) in results {
            match result {
                Ok(Applied::Changed) => report.applied.push(planned.reference.clone()),
                Ok(Applied::Unchanged) => report.unchanged.push(planned.reference.clone()),
                Err(e) => {
                    let kind = if e.contains("inventory_policy") {
                        ObjectErrorKind::Refused
                    } else {
                        ObjectErrorKind::Apply
                    };
                    report.fail(&planned.reference, kind, e);
                    continue;
                }
            }
            applied.push(planned);
        }
        applied
    }

    async fn wait_all(&self, objects: Vec<PlannedObject>, report: &mut SyncReport) {
        let timeout = self.options.reconcile_timeout;
        let results: Vec<_> = futures::stream::iter(objects)
            .map(|planned| async move {
                let result = apply::wait_healthy(&self.client, &planned, timeout).await;
                (planned.reference, result)
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        for (reference, result) in results {
            if let Err(e) = result {
                report.fail(&reference, ObjectErrorKind::Health, e);
            }
        }
    }

    /// Prunes, dependents' kinds before Namespaces and CRDs; returns what must stay in the
    /// inventory because pruning it failed.
    async fn prune_all(&self, leaving: Vec<ObjectRef>, report: &mut SyncReport) -> Vec<ObjectRef> {
        let (last, first): (Vec<_>, Vec<_>) = leaving.into_iter().partition(goes_first);
        let mut failed = Vec::new();
        for batch in [first, last] {
            let results: Vec<_> = futures::stream::iter(batch)
                .map(|reference| async move {
                    let result = self.prune_one(&reference).await;
                    (reference, result)
                })
                .buffer_unordered(self.options.concurrency.max(1))
                .collect()
                .await;
            for (reference, result) in results {
                match result {
                    Ok(Pruned::Deleted) => report.pruned.push(reference),
                    Ok(Pruned::NotOurs) => {}
                    Err(e) => {
                        report.fail(&reference, ObjectErrorKind::Prune, e);
                        failed.push(reference);
                    }
                }
            }
        }
        failed
    }

    async fn prune_one(&self, reference: &ObjectRef) -> Result<Pruned, String> {
        let kind: ResolvedKind = match self
            .kinds
            .resolve_group_kind(&self.client, &reference.group, &reference.kind)
            .await
        {
            Ok(Some(kind)) => kind,
            // A kind no longer served has no objects left to delete.
            Ok(None) => return Ok(Pruned::NotOurs),
            Err(e) => return Err(format!("discovery: {}", apply::describe(&e))),
        };
        prune::prune(
            &self.client,
            reference,
            &kind,
            &self.options.inventory.id(),
            propagation(self.options.prune_propagation),
            self.options.prune_timeout,
        )
        .await
    }
}

/// The object as sent: namespace settled, and the fields only a server sets removed (a copy of
/// `kubectl get -o yaml` output would otherwise carry a stale resourceVersion into the apply).
fn request_body(object: &DesiredObject, namespace: Option<&str>) -> Value {
    let mut body = serde_json::to_value(&object.object).unwrap_or(Value::Null);
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            meta.remove(field);
        }
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::from(ns));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
    body
}

/// The group, kind and scope a CustomResourceDefinition defines.
fn crd_defines(data: &Value) -> Option<(String, String, bool)> {
    let spec = data.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let kind = spec.get("names")?.get("kind")?.as_str()?;
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    Some((group.to_owned(), kind.to_owned(), namespaced))
}
