//! Templates cost bounded time and memory: runaway loops run out of fuel, oversized values and
//! outputs are refused, a 20,000-filter chain does not overflow the stack, and variables that
//! refer to each other are a loop only when they really loop. Each is a clear error on its
//! task, never an abort.

mod common;
use common::fixtures;

#[test]
fn runaway_templates_fail_their_task_and_nothing_aborts() {
    let pb = fixtures().join("bounded_cost.yml");
    let run = common::apply_local(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let msg = |task: &str| {
        let t = run.tasks_named(task);
        assert_eq!(t.len(), 1, "{task}: {}", run.all_output());
        t[0]["msg"].as_str().unwrap_or_default().to_string()
    };
    for (task, why) in [
        ("nested ranges", "ran out of fuel"),
        ("product", "too large"),
        ("indent", "too large"),
        ("repeat", "too large"),
        ("output", "output is larger than"),
        ("huge int", "400 digits"),
        ("loop", "in a loop: loop_a -> loop_b -> loop_a"),
    ] {
        let m = msg(task);
        assert!(m.contains(why), "{task}: {m}");
        assert!(
            m.contains(&format!("task '{task}'")),
            "{task} names its task: {m}"
        );
    }
    assert!(
        run.stdout.contains("ok: [h1] chain of filters => X"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ok: [h1] chain of variables => end"),
        "{}",
        run.stdout
    );
}
