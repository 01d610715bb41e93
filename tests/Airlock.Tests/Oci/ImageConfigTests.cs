using System.Text;
using Airlock.Oci;

namespace Airlock.Tests.Oci;

public sealed class ImageConfigTests
{
    [Fact]
    public void Go_nanosecond_times_are_read_and_an_unreadable_time_leaves_the_rest_of_the_config()
    {
        var config = ImageConfig.TryParse(Encoding.UTF8.GetBytes("""
            {"created":"2023-05-10T12:34:56.123456789Z","architecture":"arm64","os":"linux","variant":"v8",
             "config":{"Labels":{"a":"b"},"Cmd":["sh"]},
             "history":[{"created":"yesterday","created_by":"/bin/sh -c true","empty_layer":true}]}
            """));

        Assert.NotNull(config);
        Assert.Equal(new DateTimeOffset(2023, 5, 10, 12, 34, 56, TimeSpan.Zero).AddTicks(1234567), config.Created);
        Assert.Equal("linux/arm64/v8", config.Platform?.ToString());
        Assert.Equal("b", config.Config?.Labels?["a"]);
        var step = Assert.Single(config.History!);
        Assert.Null(step.Created);
        Assert.Equal("/bin/sh -c true", step.CreatedBy);
    }

    [Fact]
    public void An_artifact_config_that_is_not_an_object_is_no_image_config()
    {
        Assert.Null(ImageConfig.TryParse("[1,2]"u8));
        Assert.Null(ImageConfig.TryParse("{}"u8)?.Platform);
    }
}
