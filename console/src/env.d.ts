/** Style sheets are bundled by Vite (side-effect imports). */
declare module "*.css";
