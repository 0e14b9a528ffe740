//! Shared helpers: clusters with a runtime per node, condition waits with
//! deadlines, metric lookups.

use std::future::Future;
use std::time::{Duration, Instant};

use rsp_actors::{RuntimeConfig, TenantHandle, TenantRuntime};
use rsp_consensus::testing::TestCluster;

pub struct Nodes {
    pub cluster: TestCluster,
    pub runtimes: Vec<TenantRuntime>,
}

impl Nodes {
    /// The runtime of node `id` (ids start at 1).
    pub fn rt(&self, id: u64) -> &TenantRuntime {
        &self.runtimes[(id - 1) as usize]
    }

    /// `tenant`'s handle on every node, in node order.
    pub async fn tenant_everywhere(&self, tenant: &str) -> Vec<TenantHandle> {
        let mut handles = Vec::new();
        for rt in &self.runtimes {
            handles.push(rt.tenant(tenant).await.expect("tenant"));
        }
        handles
    }

    pub fn registry(&self, id: u64) -> &prometheus::Registry {
        &self.cluster.nodes[(id - 1) as usize].registry
    }
}

/// Times shrunk for tests.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        sweep_interval: Duration::from_millis(100),
        ..RuntimeConfig::default()
    }
}

pub async fn start(n: usize, config: RuntimeConfig) -> Nodes {
    let cluster = TestCluster::start(n).await.expect("cluster starts");
    // Rate-limit shares divide by the membership each node has applied.
    for node in &cluster.nodes {
        wait_for("membership applied", Duration::from_secs(10), || async {
            let m = node.consensus.metrics();
            (m.membership_config.membership().nodes().count() == n).then_some(())
        })
        .await;
    }
    let mut runtimes = Vec::new();
    for node in &cluster.nodes {
        let rt = TenantRuntime::start(node.consensus.clone(), config.clone(), &node.registry)
            .await
            .expect("runtime starts");
        runtimes.push(rt);
    }
    // Every node knows the leader before tests read locally.
    for node in &cluster.nodes {
        node.consensus.ready().await.expect("node ready");
    }
    // Every member has recorded its features, so sessions are made in the
    // current format (a fresh cluster's first second makes the earlier one).
    for rt in &runtimes {
        wait_for(
            "session user tags in force",
            Duration::from_secs(10),
            || async { rt.session_user_tags().then_some(()) },
        )
        .await;
    }
    Nodes { cluster, runtimes }
}

/// Poll `f` until it yields `Some`, failing the test after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Value of a metric whose labels include all of `labels` (0 when absent),
/// read from the text exposition format.
pub fn metric(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("metrics encode");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let wanted = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        if wanted && let Some(value) = rest.rsplit(' ').next() {
            return value.parse().expect("metric value");
        }
    }
    0.0
}
