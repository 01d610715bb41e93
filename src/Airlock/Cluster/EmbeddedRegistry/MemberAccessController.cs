using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Registry.Auth;
using Microsoft.AspNetCore.Http;

namespace Airlock.Cluster.EmbeddedRegistry;

/// <summary>
/// Who may use the embedded registry: nobody by password (there is none on disk) — a client is who its certificate says,
/// the TLS handshake having checked it against the cluster's client CA. A member node (<c>system:node:NAME</c>, still in the
/// membership) may pull; the operator (<c>system:masters</c>, <c>server/tls/client-admin.crt</c>) may also push and delete;
/// anyone else is refused with what to present.
/// </summary>
internal sealed class MemberAccessController(MembershipStore membership) : IAccessController
{
    private static readonly HashSet<string> NodeActions = ["pull"];

    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken)
    {
        var certificate = context.Connection.ClientCertificate;
        if (certificate is null)
        {
            return Done(AccessDecision.Denied(null,
                "the embedded registry serves cluster members only: present a node's client certificate (<data-dir>/agent/client.crt) "
                + "or the operator's (<data-dir>/server/tls/client-admin.crt)"));
        }

        if (NodeCertificates.IsAdmin(certificate))
        {
            return Done(AccessDecision.Allow(ServerPki.AdminCommonName));
        }

        var node = NodeCertificates.NodeNameOf(certificate);
        if (node is null || membership.Find(node) is null)
        {
            return Done(AccessDecision.Denied(certificate.Subject, $"{certificate.Subject} is not a member of this cluster"));
        }

        var user = NodeCertificates.ClientCommonName(node);
        var refused = requested.FirstOrDefault(r => r.Type != "repository" || r.Actions.Any(a => !NodeActions.Contains(a)));
        return Done(refused is null
            ? AccessDecision.Allow(user)
            : AccessDecision.Denied(user, $"{string.Join(',', refused.Actions)} on {refused.Type} {refused.Name} is not allowed to nodes: they pull; push with the operator's certificate"));
    }

    private static ValueTask<AccessDecision> Done(AccessDecision decision) => ValueTask.FromResult(decision);
}
