//! Thanos's pairwise penalty merge of HA replicas (`reference/thanos.md` §5), over whole
//! sample vectors.
//!
//! Replicas are folded pairwise, `dedup(dedup(r0, r1), r2)…`. Each pair keeps the last emitted
//! timestamp `last_t` and a penalty per side. Every step seeks both sides past
//! `last_t + 1 + penalty`, picks the earlier sample (ties go to the first side), clears the
//! chosen side's penalty and gives the other side `2 × (t − last_t)`, or 5000 ms before anything
//! was emitted. The effect: stay on one replica and switch only across a gap of more than
//! about two scrape intervals.
//!
//! For counters (`rate`, `increase`, `irate`, `resets` around the selector) each replica
//! carries an offset: when the merge switches replicas and a side's current value is below the
//! last emitted value, the difference is added to that side from then on, so the switch does
//! not look like a counter reset (Thanos issue #2401). As in Thanos, the adjustment applies to
//! every side that still has a sample at the switch, and also at the very first step (the
//! first side's first sample counts as the "last value" there; Thanos PR #9041 is about that).

/// Thanos's penalty before any sample was emitted (ms).
pub const INITIAL_PENALTY_MS: i64 = 5000;

/// One replica: a cursor over its samples, Go-iterator style (positioned before the first
/// sample until `next` or `seek`), with the counter offset.
#[derive(Debug)]
struct Leaf<'a> {
    ts: &'a [i64],
    vs: &'a [f64],
    /// Index of the current sample; -1 before the first.
    pos: isize,
    counter: bool,
    offset: f64,
}

impl Leaf<'_> {
    fn idx(&self) -> usize {
        usize::try_from(self.pos).unwrap_or(0).min(self.ts.len().saturating_sub(1))
    }

    fn valid(&self) -> bool {
        usize::try_from(self.pos).is_ok_and(|p| p < self.ts.len())
    }

    fn next(&mut self) -> bool {
        if usize::try_from(self.pos + 1).is_ok_and(|p| p <= self.ts.len()) {
            self.pos += 1;
        }
        self.valid()
    }

    /// Advances to the first sample at or after `t`; never moves back.
    fn seek(&mut self, t: i64) -> bool {
        let len = self.ts.len();
        let start = usize::try_from(self.pos).unwrap_or(0);
        if start >= len {
            self.pos = len as isize;
            return false;
        }
        let skip = self.ts.get(start..).map_or(0, |rest| rest.partition_point(|&x| x < t));
        self.pos = (start + skip) as isize;
        self.valid()
    }

    fn at_t(&self) -> i64 {
        self.ts.get(self.idx()).copied().unwrap_or(i64::MIN)
    }

    fn at(&self) -> (i64, f64) {
        let i = self.idx();
        (self.ts.get(i).copied().unwrap_or(i64::MIN), self.vs.get(i).copied().unwrap_or(0.0) + self.offset)
    }

    fn adjust_at_value(&mut self, last: f64) {
        if !self.counter {
            return;
        }
        let (_, v) = self.at();
        if last > v {
            self.offset += last - v;
        }
    }
}

/// Either a replica or the merge of earlier replicas.
#[derive(Debug)]
enum Node<'a> {
    Leaf(Leaf<'a>),
    Pair(Box<Pair<'a>>),
}

impl Node<'_> {
    fn next(&mut self) -> bool {
        match self {
            Node::Leaf(l) => l.next(),
            Node::Pair(p) => p.next(),
        }
    }

    fn seek(&mut self, t: i64) -> bool {
        match self {
            Node::Leaf(l) => l.seek(t),
            Node::Pair(p) => p.seek(t),
        }
    }

    fn at_t(&self) -> i64 {
        match self {
            Node::Leaf(l) => l.at_t(),
            Node::Pair(p) => p.at_t(),
        }
    }

    fn at(&self) -> (i64, f64) {
        match self {
            Node::Leaf(l) => l.at(),
            Node::Pair(p) => p.at(),
        }
    }

    fn adjust_at_value(&mut self, last: f64) {
        match self {
            Node::Leaf(l) => l.adjust_at_value(last),
            Node::Pair(p) => p.adjust_at_value(last),
        }
    }
}

/// The penalty merge of two sides.
#[derive(Debug)]
struct Pair<'a> {
    a: Node<'a>,
    b: Node<'a>,
    a_ok: bool,
    b_ok: bool,
    last_t: i64,
    pen_a: i64,
    pen_b: i64,
    use_a: bool,
}

impl<'a> Pair<'a> {
    fn new(mut a: Node<'a>, mut b: Node<'a>) -> Self {
        let a_ok = a.next();
        let b_ok = b.next();
        Pair { a, b, a_ok, b_ok, last_t: i64::MIN, pen_a: 0, pen_b: 0, use_a: true }
    }

    fn next(&mut self) -> bool {
        // The value the merge stands on before this step: the base of a counter adjustment.
        let last = if self.use_a && self.a_ok {
            Some(self.a.at().1)
        } else if !self.use_a && self.b_ok {
            Some(self.b.at().1)
        } else {
            None
        };
        let was_a = self.use_a;
        let ok = self.step();
        if let Some(last) = last
            && self.use_a != was_a
        {
            self.adjust_at_value(last);
        }
        ok
    }

    fn step(&mut self) -> bool {
        if self.a_ok {
            self.a_ok = self.a.seek(self.last_t.saturating_add(1).saturating_add(self.pen_a));
        }
        if self.b_ok {
            self.b_ok = self.b.seek(self.last_t.saturating_add(1).saturating_add(self.pen_b));
        }
        if !self.a_ok {
            self.use_a = false;
            if self.b_ok {
                self.last_t = self.b.at_t();
                self.pen_b = 0;
            }
            return self.b_ok;
        }
        if !self.b_ok {
            self.use_a = true;
            self.last_t = self.a.at_t();
            self.pen_a = 0;
            return true;
        }
        let (ta, tb) = (self.a.at_t(), self.b.at_t());
        self.use_a = ta <= tb;
        let chosen = if self.use_a { ta } else { tb };
        let penalty = if self.last_t == i64::MIN {
            INITIAL_PENALTY_MS
        } else {
            chosen.saturating_sub(self.last_t).saturating_mul(2)
        };
        if self.use_a {
            self.pen_a = 0;
            self.pen_b = penalty;
        } else {
            self.pen_b = 0;
            self.pen_a = penalty;
        }
        self.last_t = chosen;
        true
    }

    /// Seeks by repeated `next` so that gaps in one replica are never skipped over.
    fn seek(&mut self, t: i64) -> bool {
        loop {
            let cur = self.at_t();
            if cur >= t {
                return if self.use_a { self.a.seek(cur) } else { self.b.seek(cur) };
            }
            if !self.next() {
                return false;
            }
        }
    }

    fn at_t(&self) -> i64 {
        if self.use_a { self.a.at_t() } else { self.b.at_t() }
    }

    fn at(&self) -> (i64, f64) {
        if self.use_a { self.a.at() } else { self.b.at() }
    }

    fn adjust_at_value(&mut self, last: f64) {
        if self.a_ok {
            self.a.adjust_at_value(last);
        }
        if self.b_ok {
            self.b.adjust_at_value(last);
        }
    }
}

/// Merges the replicas of one series (each: timestamps ascending, values) into one sample
/// sequence with the penalty algorithm; `counter` turns on the counter adjustment. One replica
/// is returned unchanged.
pub fn merge_replicas<'a>(replicas: &[(&'a [i64], &'a [f64])], counter: bool) -> (Vec<i64>, Vec<f64>) {
    let leaf = |r: &(&'a [i64], &'a [f64])| -> Leaf<'a> {
        let n = r.0.len().min(r.1.len());
        Leaf { ts: &r.0[..n], vs: &r.1[..n], pos: -1, counter, offset: 0.0 }
    };
    let mut iter = replicas.iter();
    let Some(first) = iter.next() else {
        return (Vec::new(), Vec::new());
    };
    if replicas.len() == 1 {
        return (first.0.to_vec(), first.1.to_vec());
    }
    let mut node = Node::Leaf(leaf(first));
    for r in iter {
        node = Node::Pair(Box::new(Pair::new(node, Node::Leaf(leaf(r)))));
    }
    let cap = replicas.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let (mut ts, mut vs) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
    while node.next() {
        let (t, v) = node.at();
        ts.push(t);
        vs.push(v);
    }
    (ts, vs)
}
