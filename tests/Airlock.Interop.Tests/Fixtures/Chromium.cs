using Microsoft.Playwright;

namespace Airlock.Interop.Tests.Fixtures;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by test.sh), headless, driven by Playwright for .NET through
/// the node driver its package carries. Never a downloaded browser; every launch gets a fresh profile (Playwright
/// makes a new user-data-dir each time), and Chromium is kept off the network but for the pages it is sent to.
/// </summary>
public sealed class Chromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly string[] Arguments =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ];

    private readonly IPlaywright _playwright;

    private Chromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    public static async Task<Chromium> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new FileNotFoundException($"{ExecutablePath} is missing: install Debian's chromium package (test.sh does)", ExecutablePath);
        }

        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                Args = Arguments,
                Timeout = 60_000,
            });
            return new Chromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.CloseAsync();
        _playwright.Dispose();
    }
}

/// <summary>
/// A page in its own browser context that remembers every console error, uncaught exception and failed request,
/// so a test can say the page had none.
/// </summary>
public sealed class WatchedPage : IAsyncDisposable
{
    private readonly List<string> _problems = [];

    private WatchedPage(IBrowserContext context, IPage page)
    {
        Context = context;
        Page = page;
        page.Console += (_, message) =>
        {
            if (message.Type is "error" or "warning")
            {
                Add($"console {message.Type}: {message.Text}");
            }
        };
        page.PageError += (_, error) => Add($"uncaught: {error}");
        page.RequestFailed += (_, request) => Add($"request failed: {request.Method} {request.Url} ({request.Failure})");
    }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    public static async Task<WatchedPage> OpenAsync(Chromium chromium, BrowserNewContextOptions options)
    {
        var context = await chromium.Browser.NewContextAsync(options);
        context.SetDefaultTimeout(30_000);
        return new WatchedPage(context, await context.NewPageAsync());
    }

    /// <summary>A screenshot kept as a test artifact under <c>.test-results/console/</c> of the repository.</summary>
    public async Task ScreenshotAsync(string name)
    {
        var directory = Path.Combine(RepositoryRoot(), ".test-results", "console");
        Directory.CreateDirectory(directory);
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory, name + ".png"), FullPage = true });
    }

    public async ValueTask DisposeAsync() => await Context.CloseAsync();

    private void Add(string problem)
    {
        lock (_problems)
        {
            _problems.Add(problem);
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Airlock.slnx")))
            {
                return directory.FullName;
            }
        }

        return Path.GetTempPath();
    }
}
