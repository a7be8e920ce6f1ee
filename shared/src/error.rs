//! What every library error in this crate can say about itself.

/// Whether an operation that failed with this error may succeed if tried again unchanged.
///
/// Handlers use it to decide between returning an SQS record as a batch-item failure (it comes
/// back after its visibility timeout) and recording a final failure with its reason.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}
