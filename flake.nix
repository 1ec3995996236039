{
  description = "nixlive: NixOS live CDs built and booted in Go (imagegen as Nix derivations)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      version = "0.1.0";
      src = nixpkgs.lib.cleanSource ./.;
      # The NAR hash of `go mod vendor` of this tree, computed without a
      # store (nix-hash --type sha256 vendor/, as SRI). Update it with
      # go.mod: a wrong one makes the build print the right one.
      vendorHash = "sha256-oHgLKMqfApyLk6fFFCWqDh82YSmc9unI70wDK7LOyJM=";
      common = {
        pname = "nixlive";
        inherit version src vendorHash;
        # The tests boot QEMU and run Nix: `go test ./...` in the tree.
        doCheck = false;
        ldflags = [ "-s" "-w" ];
      };
    in {
      packages.${system} = {
        # imagegen for people: dynamically linked, cgo (DataDog/zstd).
        imagegen = pkgs.buildGoModule (common // {
          subPackages = [ "cmd/imagegen" ];
          meta.mainProgram = "imagegen";
        });
        # Every program, statically linked (musl): imagegen as the builder
        # of lib.nix's derivations (no shell in the sandbox), stage1 for
        # `imagegen initrd --stage1`, stage2 and postboot for the live system.
        nixlive-static = pkgs.pkgsStatic.buildGoModule (common // {
          subPackages = [ "cmd/imagegen" "cmd/stage1" "cmd/stage2" "cmd/postboot" "cmd/demo-init" ];
        });
        default = self.packages.${system}.imagegen;
      };

      # closureInfo, makeSquashfs, makeIsoImage, makeInitrd, fromConfig:
      # nix/lib.nix with the static imagegen and nixpkgs' boot loaders.
      # lib.withImagegen takes lib.nix's own arguments.
      lib = import ./nix/lib.nix {
        imagegen = self.packages.${system}.nixlive-static;
        bootFiles = import ./nix/bootfiles.nix pkgs;
      } // {
        withImagegen = args: import ./nix/lib.nix args;
      };

      nixosModules = {
        iso = { lib, ... }: {
          imports = [ ./nix/modules/iso.nix ];
          nixlive.package = lib.mkDefault self.packages.${system}.nixlive-static;
        };
        default = self.nixosModules.iso;
      };
    };
}
