# The machine profile of an installed Bloud box (nixosConfigurations.bloud): what upstream's
# installed.nix provides around the Bloud modules. Disks are found by label (the installer
# labels them `nixos` and `boot`), so the configuration evaluates without a
# hardware-configuration.nix and rebuilds need no --impure.
{ lib, pkgs, ... }:

{
  bloud.enable = true;
  bloud.externalHost = lib.mkDefault "http://bloud.local";

  networking.hostName = lib.mkDefault "bloud";

  # bloud.local on the LAN.
  services.avahi = {
    enable = true;
    nssmdns4 = true;
    publish = {
      enable = true;
      addresses = true;
      workstation = true;
    };
  };

  # Port 80 is opened by bloud.proxy.openFirewall; 22 for administration. No 8080 and no
  # 3000: the agent listens on loopback only and is reached through the proxy.
  services.openssh.enable = true;
  networking.firewall.enable = true;

  boot.loader.systemd-boot.enable = lib.mkDefault true;
  boot.loader.efi.canTouchEfiVariables = lib.mkDefault true;
  boot.initrd.availableKernelModules = [
    "ahci"
    "nvme"
    "sd_mod"
    "usb_storage"
    "xhci_pci"
    "virtio_pci"
    "virtio_blk"
    "virtio_scsi"
  ];
  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = lib.mkDefault {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
    options = [
      "fmask=0077"
      "dmask=0077"
    ];
  };

  time.timeZone = lib.mkDefault "UTC";
  environment.systemPackages = [
    pkgs.curl
    pkgs.jq
  ];

  system.stateVersion = "25.05";
}
