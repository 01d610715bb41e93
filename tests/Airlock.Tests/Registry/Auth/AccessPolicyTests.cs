using Airlock.Registry.Auth;

namespace Airlock.Tests.Registry.Auth;

public sealed class AccessPolicyTests
{
    private static IReadOnlyList<string> Grant(AccessPolicy policy, string? user, string repository, params string[] actions) =>
        policy.Grant(user, AccessRequest.Repository(repository, actions));

    [Fact]
    public void Without_a_file_authenticated_users_may_do_everything_and_anonymous_nothing()
    {
        var policy = AccessPolicy.Create(anonymousPull: false);

        Assert.Equal(["pull", "push", "delete"], Grant(policy, "alice", "any/repo", "pull", "push", "delete"));
        Assert.Equal(["*"], Grant(policy, "alice", "any/repo", "*"));
        Assert.Equal(["*"], policy.Grant("alice", AccessRequest.Catalog()));
        Assert.Empty(Grant(policy, null, "any/repo", "pull"));
        Assert.Empty(policy.Grant(null, AccessRequest.Catalog()));
        Assert.False(policy.AllowsAnonymous);
    }

    [Fact]
    public void Anonymous_pull_grants_pull_and_catalog_without_credentials()
    {
        var policy = AccessPolicy.Create(anonymousPull: true);

        Assert.Equal(["pull"], Grant(policy, null, "library/alpine", "pull", "push", "delete"));
        Assert.Equal(["*"], policy.Grant(null, AccessRequest.Catalog()));
        Assert.True(policy.AllowsAnonymous);
    }

    [Fact]
    public void First_rule_matching_user_and_repository_wins()
    {
        var policy = AccessPolicy.Parse("""
            access:
              - users: [alice]
                repositories: ["team-a/*", "shared/tools"]
                actions: [pull, push, delete]
              - users: [alice]
                repositories: ["team-a/frozen"]   # never reached: the rule above matches first
                actions: []
              - users: ["*"]
                repositories: ["team-?/*"]
                actions: [pull]
            """, "access.yaml", anonymousPull: false);

        Assert.Equal(["push", "delete"], Grant(policy, "alice", "team-a/frozen", "push", "delete"));
        Assert.Equal(["push"], Grant(policy, "alice", "shared/tools", "push"));
        Assert.Empty(Grant(policy, "alice", "shared/tools-2", "pull"));
        Assert.Equal(["pull"], Grant(policy, "alice", "team-b/deep/path", "pull", "push"));
        Assert.Equal(["pull"], Grant(policy, "bob", "team-c/x", "pull"));
        Assert.Empty(Grant(policy, "bob", "team-cc/x", "pull"));
        Assert.Empty(Grant(policy, null, "team-a/x", "pull"));
        // Catalog needs a rule for repositories "*" with pull.
        Assert.Empty(policy.Grant("alice", AccessRequest.Catalog()));
    }

    [Fact]
    public void Anonymous_rules_in_the_file_apply_before_the_implicit_anonymous_pull_rule()
    {
        var policy = AccessPolicy.Parse("""
            access:
              - users: [anonymous]
                repositories: ["private/*"]
                actions: []
              - users: ["*"]
                repositories: ["*"]
                actions: ["*"]
            """, "access.yaml", anonymousPull: true);

        Assert.Empty(Grant(policy, null, "private/secret", "pull"));
        Assert.Equal(["pull"], Grant(policy, null, "public/app", "pull", "push"));
        Assert.Equal(["*"], policy.Grant("carol", AccessRequest.Catalog()));
        Assert.True(policy.AllowsAnonymous);
    }

    [Fact]
    public void A_scalar_is_accepted_where_a_one_item_list_is_meant()
    {
        var policy = AccessPolicy.Parse("""
            access:
              - users: "*"
                repositories: "*"
                actions: pull
            """, "access.yaml", anonymousPull: false);

        Assert.Equal(["pull"], Grant(policy, "dave", "x", "pull", "push"));
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_file_and_line_in_file_order()
    {
        var error = Assert.Throws<AuthConfigurationException>(() => AccessPolicy.Parse("""
            access:
              - users: [alice]
                repositories: ["team-a/*", ""]
                actions: [pull, write]
                comment: hello
              - users: []
                repositories: ["Team-B/*"]
                actions: [push]
              - repositories: ["*"]
                actions: [pull]
              - just a string
            extra: true
            """, "/etc/airlock/access.yaml", anonymousPull: false));

        Assert.Equal(
            [
                "/etc/airlock/access.yaml:3: empty repository pattern",
                "/etc/airlock/access.yaml:4: unknown action \"write\" (expected pull, push, delete or \"*\")",
                "/etc/airlock/access.yaml:5: unknown key \"comment\" (expected users, repositories, actions)",
                "/etc/airlock/access.yaml:6: \"users\" is empty",
                "/etc/airlock/access.yaml:7: repository pattern \"Team-B/*\" has characters no repository name can contain (lower-case letters, digits, . _ - / and the wildcards * ? only)",
                "/etc/airlock/access.yaml:9: rule has no \"users\"",
                "/etc/airlock/access.yaml:11: a rule must be a mapping with users, repositories and actions",
                "/etc/airlock/access.yaml:12: unknown key \"extra\" (expected \"access\")",
            ],
            error.Problems);
    }

    [Fact]
    public void Broken_yaml_and_a_missing_access_list_are_reported_with_the_line()
    {
        var broken = Assert.Throws<AuthConfigurationException>(() => AccessPolicy.Parse("access:\n  - users: [alice\n", "a.yaml", false));
        var empty = Assert.Throws<AuthConfigurationException>(() => AccessPolicy.Parse("", "b.yaml", false));
        var notAList = Assert.Throws<AuthConfigurationException>(() => AccessPolicy.Parse("access: everyone\n", "c.yaml", false));

        Assert.StartsWith("a.yaml:", Assert.Single(broken.Problems), StringComparison.Ordinal);
        Assert.Equal("b.yaml:1: expected a mapping with an \"access:\" list of rules", Assert.Single(empty.Problems));
        Assert.Equal("c.yaml:1: \"access\" must be a list of rules", Assert.Single(notAList.Problems));
    }

    [Fact]
    public void Load_names_a_missing_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"airlock-absent-{Guid.NewGuid():N}.yaml");

        var error = Assert.Throws<AuthConfigurationException>(() => AccessPolicy.Load(path, false));

        Assert.StartsWith($"{path}: cannot read access file", error.Message, StringComparison.Ordinal);
    }
}
