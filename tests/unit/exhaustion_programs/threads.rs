// 200 Rust threads alive together: thread::spawn panics when the kernel refuses one.
use std::{thread, time::Duration};

fn main() {
    let handles: Vec<_> = (0..200)
        .map(|_| thread::spawn(|| thread::sleep(Duration::from_secs(5))))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
