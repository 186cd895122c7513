//! The filters that draw at random, `random` and `shuffle`, and the draws of `passwords`.
//!
//! With a `seed` Ansible draws from Python's `random.Random(seed)`, and playbooks rely on the
//! exact numbers (`{{ 59 | random(seed=inventory_hostname) }}` spreads cron minutes over a
//! fleet, and must not move when the tool changes). So seeded draws here reproduce CPython's
//! Mersenne Twister: its seeding of strings and integers, `getrandbits`, and the rejection
//! sampling of `randrange`, `choice` and `shuffle`. Unseeded draws use the system's entropy.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, State};
use sha2::{Digest, Sha512};

use super::{ensure_defined, invalid, is_list, items_of};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("random", random);
    env.add_filter("shuffle", shuffle);
}

/// Ansible's `random(end, start=None, step=None, seed=None)`: a number of
/// `range(start, end, step)`, or an item of a list.
fn random(
    state: &State,
    end: Value,
    start: Option<i64>,
    step: Option<i64>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    ensure_defined(state, &end)?;
    let start = start.or(kwargs.get("start")?);
    let step = step.or(kwargs.get("step")?);
    let seed: Option<Value> = kwargs.get("seed")?;
    kwargs.assert_all_used()?;
    let mut rng = Draws::from_seed(seed.as_ref())?;
    if end.kind() == ValueKind::Number {
        let end = i64::try_from(end).map_err(|_| invalid("random needs an integer"))?;
        let start = start.filter(|s| *s != 0).unwrap_or(0);
        let step = step.filter(|s| *s != 0).unwrap_or(1);
        return rng.randrange(start, end, step).map(Value::from);
    }
    if start.is_some_and(|s| s != 0) || step.is_some_and(|s| s != 0) {
        return Err(invalid(
            "start and step can only be used with integer values",
        ));
    }
    let items: Vec<Value> = match end.as_str() {
        Some(s) if end.kind() == ValueKind::String => s.chars().map(Value::from).collect(),
        _ if is_list(&end) || end.kind() == ValueKind::Map => items_of(state, &end)?,
        _ => return Err(invalid("random can only be used on sequences and integers")),
    };
    if items.is_empty() {
        return Err(invalid("Cannot choose from an empty sequence"));
    }
    let i = rng.below(items.len() as u64) as usize;
    Ok(items[i].clone())
}

/// Ansible's `shuffle(seed=None)`: the list in a random order (Python's `Random.shuffle`).
fn shuffle(
    state: &State,
    list: Value,
    seed: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let mut items = items_of(state, &list)?;
    let seed = seed.or(kwargs.get("seed")?);
    kwargs.assert_all_used()?;
    // Ansible shuffles only with a non-empty seed; `seed=''` is no seed.
    let seed = seed.filter(|s| s.is_true());
    let mut rng = Draws::from_seed(seed.as_ref())?;
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    Ok(Value::from(items))
}

/// A source of draws: CPython's generator for a seed, else the system's entropy.
pub(super) enum Draws {
    Seeded(Box<Mt19937>),
    System,
}

impl Draws {
    pub(super) fn from_seed(seed: Option<&Value>) -> Result<Draws, Error> {
        let Some(seed) = seed.filter(|s| !s.is_none() && !s.is_undefined()) else {
            return Ok(Draws::System);
        };
        let key = match seed.kind() {
            ValueKind::Number => match i128::try_from(seed.clone()) {
                Ok(n) if !seed.to_string().contains('.') => int_key(n.unsigned_abs()),
                _ => return Err(invalid("random: a float seed is not supported by prov")),
            },
            ValueKind::String => str_key(seed.as_str().unwrap_or_default()),
            ValueKind::Bool => int_key(seed.is_true() as u128),
            _ => str_key(&seed.to_string()),
        };
        Ok(Draws::Seeded(Box::new(Mt19937::by_array(&key))))
    }

    fn next_u32(&mut self) -> u32 {
        match self {
            Draws::Seeded(mt) => mt.next_u32(),
            Draws::System => {
                let mut b = [0u8; 4];
                getrandom::fill(&mut b).expect("system entropy");
                u32::from_le_bytes(b)
            }
        }
    }

    /// Python's `getrandbits(k)` for `k` up to 64.
    fn bits(&mut self, k: u32) -> u64 {
        match k {
            0 => 0,
            1..=32 => u64::from(self.next_u32() >> (32 - k)),
            _ => {
                let low = u64::from(self.next_u32());
                let high = u64::from(self.next_u32() >> (64 - k));
                (high << 32) | low
            }
        }
    }

    /// Python's `_randbelow(n)`: uniform in `0..n` by rejection.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.bits(k);
            if r < n {
                return r;
            }
        }
    }

    /// Python's `randrange(start, stop, step)`.
    fn randrange(&mut self, start: i64, stop: i64, step: i64) -> Result<i64, Error> {
        let width = i128::from(stop) - i128::from(start);
        let step = i128::from(step);
        let n = if step > 0 {
            (width + step - 1).div_euclid(step)
        } else {
            (width + step + 1).div_euclid(step)
        };
        if n <= 0 {
            return Err(invalid(format!(
                "empty range in randrange({start}, {stop}, {step})"
            )));
        }
        let n = u64::try_from(n).map_err(|_| invalid("random: range too large"))?;
        Ok((i128::from(start) + step * i128::from(self.below(n))) as i64)
    }
}

/// The seeding key of a string: its UTF-8 bytes followed by their SHA-512, read as one big
/// integer (CPython's `seed(version=2)`).
fn str_key(s: &str) -> Vec<u32> {
    let mut bytes = s.as_bytes().to_vec();
    bytes.extend_from_slice(&Sha512::digest(s.as_bytes()));
    // Big-endian bytes of the integer → its 32-bit words, least significant first.
    let mut words: Vec<u32> = bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |w, b| (w << 8) | u32::from(*b)))
        .collect();
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    words
}

/// The seeding key of an integer's absolute value: its 32-bit words, least significant first.
fn int_key(mut n: u128) -> Vec<u32> {
    let mut words = vec![];
    while n > 0 {
        words.push(n as u32);
        n >>= 32;
    }
    if words.is_empty() {
        words.push(0);
    }
    words
}

/// The MT19937 generator as CPython seeds and runs it.
pub(super) struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn by_seed(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    /// The reference `init_by_array`, which CPython uses for every seed.
    fn by_array(key: &[u32]) -> Mt19937 {
        let mut mt = Mt19937::by_seed(19_650_218);
        let s = &mut mt.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            let prev = s[i - 1];
            s[i] = (s[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                s[0] = s[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            let prev = s[i - 1];
            s[i] =
                (s[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                s[0] = s[623];
                i = 1;
            }
        }
        s[0] = 0x8000_0000;
        mt
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        for k in 0..624 {
            let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.state[k] = self.state[(k + 397) % 624] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::render;

    // Expected values printed by CPython 3.11: `random.Random(seed).randrange(...)`,
    // `.choice(...)` and `.shuffle(...)`.
    #[test]
    fn seeded_draws_are_cpythons() {
        assert_eq!(render("{{ 59 | random(seed='web1') }}"), "52");
        assert_eq!(render("{{ 59 | random(seed='web2') }}"), "22");
        assert_eq!(render("{{ 100 | random(seed=42) }}"), "81");
        assert_eq!(render("{{ 100 | random(10, 5, seed=7) }}"), "60");
        assert_eq!(render("{{ ['a','b','c','d'] | random(seed='x') }}"), "c");
        assert_eq!(
            render("{{ [1,2,3,4,5] | shuffle(seed='x') | join(',') }}"),
            "5,2,1,4,3"
        );
        assert_eq!(
            render("{{ 1000 | random(seed=1180591620717411303429) }}"),
            "478"
        );
        assert_eq!(
            render("{{ 1099511627776 | random(seed=0) }}"),
            "849735321549"
        );
    }

    #[test]
    fn unseeded_draws_stay_in_range() {
        for _ in 0..50 {
            let n: i64 = render("{{ 10 | random(start=5) }}").parse().unwrap();
            assert!((5..10).contains(&n));
        }
    }
}
