namespace Airlock.Content;

/// <summary>
/// A backend the store depends on (object storage, the metadata cluster) did not answer or refused for a reason
/// that is not the request's: nothing was changed that a retry could not finish, and the same call works again once
/// the backend is back. The registry answers it with 503.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
