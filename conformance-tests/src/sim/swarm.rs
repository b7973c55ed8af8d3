//! A swarm scenario builder: seeds and leechers of one torrent.

use bitshoal_core::create::Version;
use bitshoal_core::id::TorrentId;
use bitshoal_core::time::Duration;

use super::{LinkProfile, NodeConfig, NodeId, Sim, SimError, TestTorrent, TorrentSpec};

/// Builds a [`Swarm`]: `seeds` nodes with the whole torrent, `leechers` with nothing.
///
/// ```
/// use bitshoal_conformance::sim::{SwarmBuilder, TorrentSpec};
/// use bitshoal_core::time::Duration;
///
/// let mut swarm = SwarmBuilder::new(TorrentSpec::single(64 * 1024, 16 * 1024))
///     .seeds(1)
///     .leechers(2)
///     .build(3);
/// swarm.run_until_finished(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
/// assert!(swarm.leechers().all(|n| swarm.content(n) == swarm.torrent.content[..]));
/// ```
#[derive(Clone, Debug)]
pub struct SwarmBuilder {
    torrent: TorrentSpec,
    seeds: usize,
    leechers: usize,
    seed_link: LinkProfile,
    leecher_link: LinkProfile,
    node: NodeConfig,
    leechers_meet: bool,
    version: Option<Version>,
}

impl SwarmBuilder {
    /// One seed, one leecher, LAN links, leechers connected to each other too.
    pub fn new(torrent: TorrentSpec) -> Self {
        Self {
            torrent,
            seeds: 1,
            leechers: 1,
            seed_link: LinkProfile::LAN,
            leecher_link: LinkProfile::LAN,
            node: NodeConfig::default(),
            leechers_meet: true,
            version: None,
        }
    }

    /// Makes a torrent of this version (BEP 52 v2-only or hybrid with
    /// [`TestTorrent::build_v2`]) instead of the default v1 torrent.
    #[must_use]
    pub fn version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }

    /// How many seeds.
    #[must_use]
    pub fn seeds(mut self, n: usize) -> Self {
        self.seeds = n;
        self
    }

    /// How many leechers.
    #[must_use]
    pub fn leechers(mut self, n: usize) -> Self {
        self.leechers = n;
        self
    }

    /// The seeds' access link.
    #[must_use]
    pub fn seed_link(mut self, link: LinkProfile) -> Self {
        self.seed_link = link;
        self
    }

    /// The leechers' access link.
    #[must_use]
    pub fn leecher_link(mut self, link: LinkProfile) -> Self {
        self.leecher_link = link;
        self
    }

    /// The configuration of every node (its link is replaced by the seed or leecher link).
    #[must_use]
    pub fn node_config(mut self, config: NodeConfig) -> Self {
        self.node = config;
        self
    }

    /// Whether leechers also connect to each other (each to those added before it).
    #[must_use]
    pub fn leechers_meet(mut self, yes: bool) -> Self {
        self.leechers_meet = yes;
        self
    }

    /// Builds the swarm in a new [`Sim`] with `seed`: makes the torrent from the simulator's
    /// RNG, adds the nodes, and has every leecher connect to every seed (and to the earlier
    /// leechers). Nothing has run yet.
    pub fn build(self, seed: u64) -> Swarm {
        let mut sim = Sim::new(seed);
        let torrent = match self.version {
            Some(v) if v.has_v2() => TestTorrent::build_v2(sim.rng(), &self.torrent, v),
            _ => TestTorrent::build(sim.rng(), &self.torrent),
        };
        let mut nodes = Vec::new();
        for i in 0..self.seeds + self.leechers {
            let is_seed = i < self.seeds;
            let node = sim.add_node(NodeConfig {
                link: if is_seed {
                    self.seed_link
                } else {
                    self.leecher_link
                },
                ..self.node.clone()
            });
            let id = if is_seed {
                sim.seed_torrent(node, &torrent)
            } else {
                sim.add_torrent(node, &torrent)
            };
            nodes.push(SwarmNode {
                node,
                torrent: id,
                seed: is_seed,
            });
        }
        for (i, l) in nodes.iter().enumerate().filter(|(_, n)| !n.seed) {
            for (j, other) in nodes.iter().enumerate() {
                let wanted = other.seed || (self.leechers_meet && j < i);
                if j != i && wanted {
                    let addr = sim.node(other.node).addr();
                    sim.connect(l.node, l.torrent, addr)
                        .expect("under the connection limit");
                }
            }
        }
        Swarm {
            sim,
            torrent,
            nodes,
        }
    }
}

/// One node of a [`Swarm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwarmNode {
    /// The node.
    pub node: NodeId,
    /// The torrent's id in its session.
    pub torrent: TorrentId,
    /// Whether it started as a seed.
    pub seed: bool,
}

/// Seeds and leechers of one torrent in a [`Sim`]; made by [`SwarmBuilder`].
#[derive(Debug)]
pub struct Swarm {
    /// The simulation.
    pub sim: Sim,
    /// The torrent and its content.
    pub torrent: TestTorrent,
    /// The nodes, seeds first.
    pub nodes: Vec<SwarmNode>,
}

impl Swarm {
    /// The leechers, in the order they were added.
    pub fn leechers(&self) -> impl Iterator<Item = SwarmNode> + '_ {
        self.nodes.iter().copied().filter(|n| !n.seed)
    }

    /// The seeds.
    pub fn seeds(&self) -> impl Iterator<Item = SwarmNode> + '_ {
        self.nodes.iter().copied().filter(|n| n.seed)
    }

    /// Whether every node has the whole torrent.
    pub fn all_finished(&self) -> bool {
        Self::finished(&self.sim, &self.nodes)
    }

    fn finished(sim: &Sim, nodes: &[SwarmNode]) -> bool {
        nodes
            .iter()
            .all(|n| sim.node(n.node).is_finished(n.torrent))
    }

    /// Runs until every node has the whole torrent.
    pub fn run_until_finished(&mut self, max: Duration) -> Result<(), SimError> {
        let nodes = self.nodes.clone();
        self.sim.run_until(|s| Self::finished(s, &nodes), max)
    }

    /// A node's copy of the torrent's content, read from its disk.
    pub fn content(&self, node: SwarmNode) -> Vec<u8> {
        self.sim
            .node(node.node)
            .disk()
            .content(node.torrent)
            .expect("the torrent is open")
    }
}
