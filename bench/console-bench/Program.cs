using System.Globalization;
using Microsoft.Playwright;

// Usage: ConsoleBench URL [RUNS]
// Each run opens a fresh browser context (empty cache, no cookies) at 1280x800, loads URL (the console's
// repositories page) and waits for its first 50 rows. It prints, per run and as the median:
//   transferred  bytes on the wire for every response of the load (headers + encoded bodies, from Chromium's
//                own accounting: Request.SizesAsync), the API call included
//   rendered     ms from the start of navigation to the console's "airlock:repositories-rendered" mark (the
//                table's first rows are in the document), from performance.getEntriesByName
//   fcp          ms to Chromium's first-contentful-paint
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: ConsoleBench URL [RUNS]");
    return 2;
}

var url = args[0];
var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
{
    ExecutablePath = "/usr/bin/chromium",
    Headless = true,
    Args =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ],
});

var transferred = new List<long>();
var rendered = new List<double>();
var painted = new List<double>();
for (var run = 1; run <= runs; run++)
{
    await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
    var page = await context.NewPageAsync();
    var responses = new List<IResponse>();
    page.Response += (_, response) => responses.Add(response);
    await page.GotoAsync(url);
    await page.Locator("#repositories tbody tr").Nth(49).WaitForAsync();
    await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
    long bytes = 0;
    foreach (var response in responses.ToList())
    {
        var sizes = await response.Request.SizesAsync();
        bytes += sizes.ResponseHeadersSize + sizes.ResponseBodySize;
    }

    var mark = await page.EvaluateAsync<double>("performance.getEntriesByName('airlock:repositories-rendered')[0].startTime");
    var fcp = await page.EvaluateAsync<double>("(performance.getEntriesByName('first-contentful-paint')[0] || { startTime: NaN }).startTime");
    var rows = await page.Locator("#repositories tbody tr").CountAsync();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"run {run}: {responses.Count} responses, transferred {bytes} bytes ({bytes / 1024.0:0.0} KiB), rendered {mark:0} ms, fcp {fcp:0} ms, {rows} rows"));
    transferred.Add(bytes);
    rendered.Add(mark);
    painted.Add(fcp);
}

static T Median<T>(List<T> values) => values.Order().ElementAt(values.Count / 2);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"median: transferred {Median(transferred) / 1024.0:0.0} KiB, rendered {Median(rendered):0} ms, fcp {Median(painted):0} ms (max rendered {rendered.Max():0} ms)"));
return 0;
