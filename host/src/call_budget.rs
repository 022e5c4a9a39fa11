//! How many calls of one plugin may run on blocking threads at once, so
//! that one plugin cannot take every blocking thread from the others. A
//! call holds its permit until its thread is done, timed out or not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of things running, and its bound.
#[derive(Debug)]
pub struct Budget {
    running: AtomicUsize,
    max: usize,
}

/// One unit of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Permit(Arc<Budget>);

impl Budget {
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            running: AtomicUsize::new(0),
            max,
        })
    }

    /// A permit, unless `max` are out already.
    pub fn try_take(self: &Arc<Self>) -> Option<Permit> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(Arc::clone(self)))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn at_most_max_permits_are_out() {
        let budget = Budget::new(2);
        let a = budget.try_take().unwrap();
        let _b = budget.try_take().unwrap();
        assert!(budget.try_take().is_none());
        drop(a);
        let _c = budget
            .try_take()
            .expect("a permit given back is free again");
        assert!(budget.try_take().is_none());
    }
}
