using Airlock.Cli.Hosting;

return await AirlockCli.RunAsync(args, Environment.GetEnvironmentVariables()).ConfigureAwait(false);
